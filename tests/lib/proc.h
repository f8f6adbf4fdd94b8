/*
 * proc.h - run the embfill binary (or any program) from a test and capture
 * its exit code, standard output and standard error.
 */
#ifndef EMBFILL_TESTS_PROC_H
#define EMBFILL_TESTS_PROC_H

struct proc_result {
	int status;  /* exit code; 128+N when killed by signal N; -1 on spawn failure */
	char *out;
	char *err;
};

/*
 * Runs argv[0] (searched in PATH) with argv, the environment of the test plus
 * env ("KEY=VALUE" entries override, "KEY" entries remove; NULL-terminated,
 * may be NULL) and stdin from /dev/null, in directory cwd (NULL: current),
 * for at most 120 s.  Returns r->status.
 */
int proc_run(const char *const *argv, const char *const *env, const char *cwd,
	     struct proc_result *r);

/* Same with argv[0] = $EMBFILL_BIN. */
int run_embfill(const char *const *args, const char *const *env, const char *cwd,
		struct proc_result *r);

void proc_result_free(struct proc_result *r);

/*
 * Starts $EMBFILL_BIN with args in the background, stdout and stderr into
 * out_path (appended), env as for proc_run.  Returns the PID, or -1.
 */
int spawn_embfill(const char *const *args, const char *const *env, const char *cwd,
		  const char *out_path);

/* Waits up to timeout_s for pid; returns its exit code (128+N when killed
 * by signal N), or -1 after killing it with SIGKILL when it did not end. */
int wait_exit(int pid, int timeout_s);

#endif
