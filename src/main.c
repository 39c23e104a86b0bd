/* main.c - svcsensor's command line and life cycle: settings (defaults, config file, flags),
 * then one pipeline run (or -a: print the last report). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcsensor/common.h"
#include "svcsensor/config.h"
#include "svcsensor/detector.h"
#include "svcsensor/flows_in.h"
#include "svcsensor/pipeline.h"

#ifndef SVCSENSOR_VERSION
#define SVCSENSOR_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: svcsensor [OPTIONS] (-r FILE ... | -i IFACE)\n"
	    "       svcsensor --learn [OPTIONS] (-r FILE ... | -i IFACE) [-m MAP]\n"
	    "       svcsensor --learn [OPTIONS] --flows-in FLOWS.csv [-m MAP]\n"
	    "       svcsensor -a [--report FILE]\n"
	    "\n"
	    "Learns a service map (which host talks to which, with which applications) and\n"
	    "flags flows that leave it.\n"
	    "\n"
	    "Input:\n"
	    "  -r, --read FILE          read a pcap/pcapng capture (repeatable, read in order;\n"
	    "                           - is the standard input)\n"
	    "  -i, --interface IFACE    capture live on IFACE\n"
	    "      --flows-in FILE      with --learn: learn from a flow CSV (nfstream's columns,\n"
	    "                           or -o's) instead of packets\n"
	    "  -t, --threads N          worker threads (default 1)\n"
	    "  -f, --filter EXPR        capture filter, tcpdump syntax\n"
	    "      --duration SECONDS   live: stop after SECONDS\n"
	    "      --fanout MODE        live: hash | cpu | qm | ebpf (config: fanout)\n"
	    "      --stats SECONDS      live: a statistics line every SECONDS (config: "
	    "stats_interval)\n"
	    "      --user NAME          live: drop privileges to NAME once capture is set up\n"
	    "      --no-promisc         live: leave promiscuous mode off (config: promisc)\n"
	    "Mode:\n"
	    "  -L, --learn              learn the service map instead of detecting\n"
	    "  -a, --show-report        print the last saved report and exit\n"
	    "Files:\n"
	    "  -c, --config FILE        settings file (JSON, see config/svcsensor.json)\n"
	    "  -m, --map FILE           service map file (config: map_file)\n"
	    "      --log FILE           anomaly log (config: log_file)\n"
	    "      --report FILE        report file (config: report_file)\n"
	    "  -o, --flows-out FILE     export every finished flow as CSV (config: flows_out)\n"
	    "Tuning:\n"
	    "      --print MODE         console lines: all | anomalies | none (config: print)\n"
	    "      --local CIDR         a local network (repeatable; replaces local_networks)\n"
	    "      --idle-timeout S     flow idle timeout in seconds (default 120)\n"
	    "      --active-timeout S   flow active timeout in seconds (default 1800)\n"
	    "      --max-flows N        live flows per worker at most (default 262144)\n"
	    "      --no-guess           report Unknown instead of nDPI's guess at give-up\n"
	    "  -q, --quiet              no progress line\n"
	    "  -h, --help               this text\n"
	    "  -V, --version            version\n");
}

enum {
	OPT_LOG = 256,
	OPT_REPORT,
	OPT_PRINT,
	OPT_LOCAL,
	OPT_IDLE,
	OPT_ACTIVE,
	OPT_MAXFLOWS,
	OPT_NOGUESS,
	OPT_DURATION,
	OPT_FLOWS_IN,
	OPT_FANOUT,
	OPT_STATS,
	OPT_USER,
	OPT_NOPROMISC,
};

static const struct option long_opts[] = {
    {"read", required_argument, NULL, 'r'},
    {"interface", required_argument, NULL, 'i'},
    {"threads", required_argument, NULL, 't'},
    {"filter", required_argument, NULL, 'f'},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"learn", no_argument, NULL, 'L'},
    {"show-report", no_argument, NULL, 'a'},
    {"config", required_argument, NULL, 'c'},
    {"map", required_argument, NULL, 'm'},
    {"log", required_argument, NULL, OPT_LOG},
    {"report", required_argument, NULL, OPT_REPORT},
    {"flows-out", required_argument, NULL, 'o'},
    {"flows-in", required_argument, NULL, OPT_FLOWS_IN},
    {"fanout", required_argument, NULL, OPT_FANOUT},
    {"stats", required_argument, NULL, OPT_STATS},
    {"user", required_argument, NULL, OPT_USER},
    {"no-promisc", no_argument, NULL, OPT_NOPROMISC},
    {"print", required_argument, NULL, OPT_PRINT},
    {"local", required_argument, NULL, OPT_LOCAL},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"active-timeout", required_argument, NULL, OPT_ACTIVE},
    {"max-flows", required_argument, NULL, OPT_MAXFLOWS},
    {"no-guess", no_argument, NULL, OPT_NOGUESS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* A whole non-negative number within [min, max], or -EINVAL after one line naming the flag. */
static int parse_uint(const char *flag, const char *s, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v < min || v > max) {
		svc_err("%s: \"%s\" is not a whole number from %lu to %lu", flag, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct svc_config cfg;
	const char *config_path = getenv("SVCSENSOR_CONFIG");
	bool learn = false, show_report = false, quiet = false;
	const char *flows_in = NULL;
	const char **files = calloc((size_t)argc, sizeof(*files));
	unsigned n_files = 0, duration = 0;
	int status = 2;
	sigset_t sigs;

	/* Signals are taken synchronously (sigtimedwait) by the run's main loop. Block them
	 * before anything else, so a SIGHUP or SIGINT during start-up (loading a large map,
	 * building nDPI modules) waits for that loop instead of killing the sensor. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (!files || config__defaults(&cfg) != 0) {
		svc_err("out of memory");
		return 2;
	}

	/* First pass: only -c, so the file is applied before every other flag. */
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "r:i:t:f:Lac:m:o:qhV", long_opts, NULL)) != -1)
		if (c == 'c')
			config_path = optarg;
	if (config_path && config__load(&cfg, config_path) != 0)
		goto out;

	optind = 1;
	bool local_reset = false;
	/* Leading ':' makes getopt return ':' for a missing value; our own messages follow. */
	while ((c = getopt_long(argc, argv, ":r:i:t:f:Lac:m:o:qhV", long_opts, NULL)) != -1) {
		unsigned long v;
		int rc = 0;
		switch (c) {
		case 'r':
			files[n_files++] = optarg;
			break;
		case 'i':
			rc = config__set_str(&cfg.interface, optarg);
			break;
		case 't':
			if ((rc = parse_uint("-t", optarg, 1, 64, &v)) == 0)
				cfg.threads = (unsigned)v;
			break;
		case 'f':
			rc = config__set_str(&cfg.bpf_filter, optarg);
			break;
		case OPT_DURATION:
			if ((rc = parse_uint("--duration", optarg, 1, 100L * 365 * 86400, &v)) == 0)
				duration = (unsigned)v;
			break;
		case 'L':
			learn = true;
			break;
		case 'a':
			show_report = true;
			break;
		case 'c':
			break;
		case 'm':
			rc = config__set_str(&cfg.map_file, optarg);
			break;
		case OPT_LOG:
			rc = config__set_str(&cfg.log_file, optarg);
			break;
		case OPT_REPORT:
			rc = config__set_str(&cfg.report_file, optarg);
			break;
		case 'o':
			rc = config__set_str(&cfg.flows_out, optarg);
			break;
		case OPT_FLOWS_IN:
			flows_in = optarg;
			break;
		case OPT_FANOUT:
			rc = config__set_str(&cfg.fanout, optarg);
			break;
		case OPT_STATS:
			if ((rc = parse_uint("--stats", optarg, 0, 86400, &v)) == 0)
				cfg.stats_interval = (unsigned)v;
			break;
		case OPT_USER:
			rc = config__set_str(&cfg.user, optarg);
			break;
		case OPT_NOPROMISC:
			cfg.promisc = false;
			break;
		case OPT_PRINT:
			rc = config__parse_print(optarg, &cfg.print);
			if (rc)
				svc_err("--print: \"%s\" is not one of all, anomalies, none",
					optarg);
			break;
		case OPT_LOCAL: {
			struct cidr net;
			if (config__parse_cidr(optarg, &net) != 0) {
				svc_err("--local: \"%s\" is not an IPv4 or IPv6 network", optarg);
				rc = -EINVAL;
				break;
			}
			if (!local_reset) {
				cfg.n_local_networks = 0;
				local_reset = true;
			}
			struct cidr *nets =
			    realloc(cfg.local_networks, (cfg.n_local_networks + 1) * sizeof(*nets));
			if (!nets) {
				rc = -ENOMEM;
				break;
			}
			nets[cfg.n_local_networks++] = net;
			cfg.local_networks = nets;
			break;
		}
		case OPT_IDLE:
			if ((rc = parse_uint("--idle-timeout", optarg, 1, 86400 * 365, &v)) == 0)
				cfg.idle_timeout = (unsigned)v;
			break;
		case OPT_ACTIVE:
			if ((rc = parse_uint("--active-timeout", optarg, 1, 86400 * 365, &v)) == 0)
				cfg.active_timeout = (unsigned)v;
			break;
		case OPT_MAXFLOWS:
			if ((rc = parse_uint("--max-flows", optarg, 16, 1UL << 28, &v)) == 0)
				cfg.max_flows = (uint32_t)v;
			break;
		case OPT_NOGUESS:
			cfg.guess = false;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			status = 0;
			goto out;
		case 'V':
			printf("svcsensor %s\n", SVCSENSOR_VERSION);
			status = 0;
			goto out;
		case ':':
			svc_err("option %s needs a value (see --help)", argv[optind - 1]);
			goto out;
		default:
			if (optopt)
				svc_err("unknown option -%c (see --help)", optopt);
			else
				svc_err("unknown option %s (see --help)", argv[optind - 1]);
			goto out;
		}
		if (rc)
			goto out;
	}
	if (optind < argc) {
		svc_err("unexpected argument \"%s\" (captures are given with -r)", argv[optind]);
		goto out;
	}

	if (show_report) {
		status = report__print_saved(cfg.report_file, stdout) == 0 ? 0 : 1;
		goto out;
	}
	if (config__validate(&cfg) != 0)
		goto out;
	if (flows_in) {
		if (!learn)
			svc_err("--flows-in: only with --learn (it learns a map from a flow CSV)");
		else if (n_files || cfg.interface)
			svc_err("--flows-in excludes -r and -i");
		else {
			/* The flows are the CSV's own: there is no flow to export again. */
			if (cfg.flows_out && *cfg.flows_out)
				svc_warn("--flows-out %s is not written with --flows-in (the "
					 "flows come from %s)",
					 cfg.flows_out, flows_in);
			status = pipeline__run(&(struct pipeline_opts){
			    .cfg = &cfg, .learn = true, .flows_in = flows_in, .quiet = quiet});
		}
		goto out;
	}
	if (!n_files && !cfg.interface) {
		svc_err("no input: give -r FILE or -i IFACE (see --help)");
		goto out;
	}
	if (n_files && cfg.interface) {
		svc_err("-r and -i exclude each other");
		goto out;
	}

	struct pipeline_opts po = {
	    .cfg = &cfg,
	    .learn = learn,
	    .files = files,
	    .n_files = n_files,
	    .duration = duration,
	    .quiet = quiet,
	};
	status = pipeline__run(&po);
out:
	fflush(stdout);
	config__free(&cfg);
	free(files);
	return status;
}
