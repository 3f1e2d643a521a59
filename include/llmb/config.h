/*
 * Configuration of every llmb program from one table of options. The table
 * (an array of struct llmb_opt) gives each option's flag, environment
 * variable, type, default and help; from it llmb_config_load() fills the
 * program's config struct from, in rising precedence, the defaults, a config
 * file, LLMB_* environment variables and command-line flags, and --help,
 * --dump-config and the docs table are printed from it too, so none of them
 * can drift from the behaviour.
 *
 * Every program's config struct starts with struct llmb_common; the engine
 * adds the common options (--redis, --prefix, --log-level, --config) and
 * --help/-h, --dump-config and --version to every table by itself.
 */
#ifndef LLMB_CONFIG_H
#define LLMB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <llmb/util.h>

/* Type of an option, and the type of its field in the config struct. */
enum llmb_opt_type {
    LLMB_OPT_STR,  /* char * (owned, NULL when unset) */
    LLMB_OPT_INT,  /* long long (0 when unset), checked against min..max */
    LLMB_OPT_BOOL, /* bool: --name / --no-name; true/false, yes/no, on/off,
                      1/0 in the environment and the file */
    LLMB_OPT_LIST  /* struct llmb_strlist: comma-separated values; the flag
                      may repeat. Each source that sets it (file, env, flags)
                      replaces what the sources below it gave. */
};

/* One option. Tables are static const arrays in the program's config.c. */
struct llmb_opt {
    const char *name;    /* long flag and config file key, "heartbeat-ms" */
    char short_name;     /* -c; 0 = none */
    const char *env;     /* "LLMB_HEARTBEAT_MS"; NULL = none */
    enum llmb_opt_type type;
    const char *def;     /* default as text; NULL = unset */
    const char *metavar; /* "MS" in --help; NULL = derived from the type */
    const char *help;    /* one sentence for --help and the docs */
    size_t offset;       /* offsetof(struct <program>_config, field) */
    long long min, max;  /* INT range; both 0 = any long long */
    bool secret;         /* masked in --dump-config (URL password or ***) */
};

/* The options every program has; the first member of every config struct. */
struct llmb_common {
    char *redis_url;   /* --redis, LLMB_REDIS_URL */
    char *prefix;      /* --prefix, LLMB_PREFIX: key prefix */
    char *log_level;   /* --log-level, LLMB_LOG_LEVEL: checked by the load */
    char *config_file; /* --config, LLMB_CONFIG; NULL = none */
    long long wait_replicas;    /* --wait-replicas: llmb_write_ack */
    long long wait_replicas_ms; /* --wait-replicas-ms */
};

/* An old spelling of an option, still accepted (as a flag, a config file
 * key and, if it had one, an environment variable) with a warning on stderr
 * that names the new one. */
struct llmb_opt_alias {
    const char *name;   /* "queue": the old long flag */
    const char *target; /* "queues": the name of the option it sets */
    const char *env;    /* the old variable, read when the new one is
                           unset; NULL = none */
};

/* A program's table and how it introduces itself in --help. */
struct llmb_opt_set {
    const char *prog;    /* "llmb-worker" */
    const char *usage;   /* "[OPTIONS] TYPE [PAYLOAD]" */
    const char *summary; /* a paragraph for --help */
    const struct llmb_opt *opts;
    size_t nopts;
    const struct llmb_opt_alias *aliases; /* deprecated spellings; may be NULL */
    size_t naliases;
    bool cluster;        /* routes by queue (llmb/cluster.h): takes a
                            redis+cluster:// URL; others refuse one */
};

/*
 * Fills cfg (whose first member is struct llmb_common; the option fields are
 * overwritten, other fields are left alone) from defaults < config file <
 * environment < argv. argv[0] is the program name. Options and positional
 * arguments may be mixed (GNU style); "--" ends the options. Flags are
 * --name=value, --name value, -x value, -xvalue, and --name / --no-name for
 * bools. Positionals are appended to *positional; with positional NULL any
 * is an error. An empty environment variable counts as unset.
 *
 * An unknown flag or config key is an error that suggests the nearest
 * option ("did you mean --queues?"). A deprecated alias works and warns on
 * stderr. A set LLMB_* variable that this program does not read is warned
 * about on stderr, naming the one probably meant; variables that other llmb
 * programs (or its scripts and tests) read are not, unless they look like
 * one of this program's.
 *
 * Returns 0 when the program should run; 1 when --help, --dump-config or
 * --version was handled (printed to stdout; the caller exits 0); or
 * LLMB_ECONFIG with a malloc'd message in *errstr such as
 *   --capacity must be an integer from 1 to 100000, got "x"
 *   config file /etc/llmb.conf:3: unknown key "foo"
 * In every case, llmb_config_free() releases what was filled in.
 */
int llmb_config_load(const struct llmb_opt_set *set, void *cfg, int argc,
                     char **argv, struct llmb_strlist *positional,
                     char **errstr);

/* Frees the STR and LIST fields of cfg and zeroes them; safe to repeat. */
void llmb_config_free(const struct llmb_opt_set *set, void *cfg);

/* Prints usage, summary and every option with its metavar, environment
 * variable and default. */
void llmb_config_help(const struct llmb_opt_set *set, FILE *out);

/* Prints the effective configuration in config file format (loadable with
 * --config), secrets masked. */
void llmb_config_dump(const struct llmb_opt_set *set, const void *cfg,
                      FILE *out);

/* Prints a markdown table: flag | env | default | meaning. */
void llmb_config_markdown(const struct llmb_opt_set *set, FILE *out);

#endif
