/* main.c - svcsensor's life cycle: block the signals, read the settings (defaults, config file,
 * flags: src/options.c), then run one mode: print the last report (-a), learn from a flow CSV
 * (--flows-in) or run the pipeline over captures or an interface. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "svcsensor/common.h"
#include "svcsensor/config.h"
#include "svcsensor/report.h"
#include "svcsensor/options.h"
#include "svcsensor/pipeline.h"

#ifndef SVCSENSOR_VERSION
#define SVCSENSOR_VERSION "0.1.0"
#endif

/* Signals are taken synchronously (sigtimedwait) by the run's main loop. Block them before
 * anything else, so a SIGHUP or SIGINT during start-up (loading a large map, building nDPI
 * modules) waits for that loop instead of killing the sensor. */
static void block_signals(void)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/* A reader that closes our standard output (`svcsensor ... | head -1`) must not kill the
	 * run before it saves the map and the report: a write to it fails with EPIPE instead,
	 * which the console sink turns into one line (src/sink/console.c). Set before any thread
	 * starts; the disposition is the process's. */
	signal(SIGPIPE, SIG_IGN);
}

/* The reader of standard output went away (a pipe or socket whose other end is closed). */
static bool stdout_reader_gone(void)
{
	struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

/* --learn --flows-in FILE: learn the map from a flow CSV instead of packets. */
static int learn_from_csv(struct svc_options *o)
{
	const struct svc_run *r = &o->run;
	if (!r->learn) {
		svc_err("--flows-in: only with --learn (it learns a map from a flow CSV)");
		return 2;
	}
	if (r->n_files || o->cfg.interface) {
		svc_err("--flows-in excludes -r and -i");
		return 2;
	}
	/* The flows are the CSV's own: there is no flow to export again. */
	if (o->cfg.flows_out && *o->cfg.flows_out) {
		svc_warn("--flows-out %s is not written with --flows-in (the flows come from %s)",
			 o->cfg.flows_out, r->flows_in);
		free(o->cfg.flows_out); /* the flow CSV sink then stays closed */
		o->cfg.flows_out = NULL;
	}
	return pipeline__run(&(struct pipeline_opts){
	    .cfg = &o->cfg, .learn = true, .flows_in = r->flows_in, .quiet = r->quiet});
}

/* The mode the parsed command line asks for; returns the exit status. */
static int run_mode(struct svc_options *o)
{
	const struct svc_run *r = &o->run;

	/* `svcsensor -a | head` is a normal use: a reader that went away is no failure. */
	if (r->show_report)
		return report__print_saved(o->cfg.report_file, stdout) == 0 || stdout_reader_gone()
			   ? 0
			   : 1;
	if (config__validate(&o->cfg) != 0)
		return 2;
	if (r->flows_in)
		return learn_from_csv(o);
	if (!r->n_files && !o->cfg.interface) {
		svc_err("no input: give -r FILE or -i IFACE (see --help)");
		return 2;
	}
	if (r->n_files && o->cfg.interface) {
		svc_err("-r and -i exclude each other");
		return 2;
	}
	struct pipeline_opts po = {
	    .cfg = &o->cfg,
	    .learn = r->learn,
	    .files = r->files,
	    .n_files = (unsigned)r->n_files,
	    .duration = r->duration,
	    .quiet = r->quiet,
	};
	return pipeline__run(&po);
}

int main(int argc, char **argv)
{
	struct svc_options o;
	int status = 2;

	block_signals();
	if (options__init(&o) != 0) {
		svc_err("out of memory");
		return 2;
	}
	o.run.config_path = getenv("SVCSENSOR_CONFIG");
	switch (options__parse(&o, argc, argv)) {
	case OPTIONS_RUN:
		status = run_mode(&o);
		break;
	case OPTIONS_HELP:
		options__usage(stdout);
		status = 0;
		break;
	case OPTIONS_VERSION:
		printf("svcsensor %s\n", SVCSENSOR_VERSION);
		status = 0;
		break;
	default: /* one line said why */
		break;
	}
	fflush(stdout);
	options__free(&o);
	return status;
}
