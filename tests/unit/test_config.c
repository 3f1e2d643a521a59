/*
 * Unit tests of lib/config.c with a small program table: precedence
 * (flags > env > file > defaults), list replacement, every kind of error
 * with its exact message, ranges, --help/--dump-config/--version,
 * interleaved positionals and "--".
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/config.h>
#include <llmb/err.h>
#include <llmb/util.h>

struct test_config {
    struct llmb_common common;
    long long capacity;
    long long delta;
    bool json;
    bool color;
    char *name;
    char *token;
    struct llmb_strlist queues;
};

static const struct llmb_opt test_opts[] = {
    {"capacity", 'c', "LLMB_CAPACITY", LLMB_OPT_INT, "4", "N",
     "Tasks run at once.", offsetof(struct test_config, capacity), 1, 100000,
     false},
    {"delta", 0, "LLMB_DELTA", LLMB_OPT_INT, "0", NULL, "Any integer.",
     offsetof(struct test_config, delta), 0, 0, false},
    {"json", 'j', "LLMB_JSON", LLMB_OPT_BOOL, "false", NULL, "Print JSON.",
     offsetof(struct test_config, json), 0, 0, false},
    {"color", 0, NULL, LLMB_OPT_BOOL, "true", NULL, "Use colors.",
     offsetof(struct test_config, color), 0, 0, false},
    {"name", 'n', "LLMB_NAME", LLMB_OPT_STR, NULL, "NAME", "A name.",
     offsetof(struct test_config, name), 0, 0, false},
    {"token", 0, "LLMB_TOKEN", LLMB_OPT_STR, NULL, "TOKEN", "A secret.",
     offsetof(struct test_config, token), 0, 0, true},
    {"queues", 'q', "LLMB_QUEUES", LLMB_OPT_LIST, "default", "Q,...",
     "Queues to serve.", offsetof(struct test_config, queues), 0, 0, false},
};

static const struct llmb_opt_alias test_aliases[] = {
    {"queue", "queues", NULL},
};

static const struct llmb_opt_set test_set = {
    "llmb-test", "[OPTIONS] COMMAND [ARG...]",
    "A program that exists to test the configuration engine.", test_opts,
    sizeof(test_opts) / sizeof(test_opts[0]), test_aliases,
    sizeof(test_aliases) / sizeof(test_aliases[0]), false,
};

static const char *const all_env[] = {
    "LLMB_CAPACITY", "LLMB_DELTA", "LLMB_JSON", "LLMB_NAME", "LLMB_TOKEN",
    "LLMB_QUEUES", "LLMB_REDIS_URL", "LLMB_PREFIX", "LLMB_LOG_LEVEL",
    "LLMB_CONFIG",
};

static char conf_path[64];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(all_env) / sizeof(all_env[0]); i++)
        unsetenv(all_env[i]);
    conf_path[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (conf_path[0] != '\0')
        unlink(conf_path);
    return 0;
}

/* Writes a config file and returns its path. */
static const char *write_conf(const char *text)
{
    int fd;
    snprintf(conf_path, sizeof(conf_path), "/tmp/llmb-test-conf-XXXXXX");
    fd = mkstemp(conf_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return conf_path;
}

/* Runs llmb_config_load on a NULL-terminated argument list. */
static int load(struct test_config *cfg, struct llmb_strlist *pos,
                char **err, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;

    argv[argc++] = (char *)"llmb-test";
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    memset(cfg, 0x5a, sizeof(*cfg)); /* the load must not read old fields */
    return llmb_config_load(&test_set, cfg, argc, argv, pos, err);
}

/* Loads, expecting failure with exactly the message want. */
static void load_fails(const char *want, ...)
{
    struct test_config cfg;
    struct llmb_strlist pos = {0};
    char *argv[32], *err = NULL;
    int argc = 0;
    va_list ap;

    argv[argc++] = (char *)"llmb-test";
    va_start(ap, want);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    assert_int_equal(llmb_config_load(&test_set, &cfg, argc, argv, &pos, &err),
                     LLMB_ECONFIG);
    assert_non_null(err);
    assert_string_equal(err, want);
    free(err);
    llmb_config_free(&test_set, &cfg);
    llmb_strlist_clear(&pos);
}

static void test_defaults(void **state)
{
    struct test_config cfg;
    char *err = NULL;
    (void)state;

    assert_int_equal(load(&cfg, NULL, &err, NULL), 0);
    assert_null(err);
    assert_string_equal(cfg.common.redis_url, "redis://127.0.0.1:6379");
    assert_string_equal(cfg.common.prefix, "llmb");
    assert_string_equal(cfg.common.log_level, "info");
    assert_null(cfg.common.config_file);
    assert_int_equal(cfg.capacity, 4);
    assert_int_equal(cfg.delta, 0);
    assert_false(cfg.json);
    assert_true(cfg.color);
    assert_null(cfg.name);
    assert_null(cfg.token);
    assert_int_equal(cfg.queues.n, 1);
    assert_string_equal(cfg.queues.v[0], "default");
    llmb_config_free(&test_set, &cfg);
    assert_null(cfg.common.prefix);
    assert_int_equal(cfg.queues.n, 0);
    llmb_config_free(&test_set, &cfg); /* twice is fine */
}

static void test_precedence(void **state)
{
    struct test_config cfg;
    char *err = NULL;
    (void)state;

    write_conf("# comment\n"
               "\n"
               "capacity = 7\n"
               "  name = from-file  \n"
               "prefix=fileprefix\n"
               "delta = -3\n"
               "json = yes\n");

    /* File over defaults. */
    assert_int_equal(load(&cfg, NULL, &err, "--config", conf_path, NULL), 0);
    assert_int_equal(cfg.capacity, 7);
    assert_string_equal(cfg.name, "from-file");
    assert_string_equal(cfg.common.prefix, "fileprefix");
    assert_string_equal(cfg.common.config_file, conf_path);
    assert_int_equal(cfg.delta, -3);
    assert_true(cfg.json);
    llmb_config_free(&test_set, &cfg);

    /* Env over file; the file found through LLMB_CONFIG. */
    setenv("LLMB_CONFIG", conf_path, 1);
    setenv("LLMB_CAPACITY", "9", 1);
    setenv("LLMB_NAME", "", 1); /* empty = unset */
    setenv("LLMB_JSON", "off", 1);
    assert_int_equal(load(&cfg, NULL, &err, NULL), 0);
    assert_int_equal(cfg.capacity, 9);
    assert_string_equal(cfg.name, "from-file");
    assert_false(cfg.json);
    assert_string_equal(cfg.common.config_file, conf_path);
    llmb_config_free(&test_set, &cfg);

    /* Flags over env. */
    assert_int_equal(load(&cfg, NULL, &err, "--capacity", "11", "-nflag",
                          "--json", "--prefix=p1", NULL), 0);
    assert_int_equal(cfg.capacity, 11);
    assert_string_equal(cfg.name, "flag");
    assert_true(cfg.json);
    assert_string_equal(cfg.common.prefix, "p1");
    llmb_config_free(&test_set, &cfg);

    /* The last flag wins; short forms. */
    assert_int_equal(load(&cfg, NULL, &err, "-c", "5", "--capacity=6",
                          "--no-json", "--no-color", NULL), 0);
    assert_int_equal(cfg.capacity, 6);
    assert_false(cfg.json);
    assert_false(cfg.color);
    llmb_config_free(&test_set, &cfg);
}

static void test_list_replace(void **state)
{
    struct test_config cfg;
    char *err = NULL;
    (void)state;

    write_conf("queues = a, b\nqueues = c\n");
    setenv("LLMB_CONFIG", conf_path, 1);

    /* The file replaces the default; keys repeated in it add up. */
    assert_int_equal(load(&cfg, NULL, &err, NULL), 0);
    assert_int_equal(cfg.queues.n, 3);
    assert_string_equal(cfg.queues.v[0], "a");
    assert_string_equal(cfg.queues.v[2], "c");
    llmb_config_free(&test_set, &cfg);

    /* The env replaces the file. */
    setenv("LLMB_QUEUES", "x,y", 1);
    assert_int_equal(load(&cfg, NULL, &err, NULL), 0);
    assert_int_equal(cfg.queues.n, 2);
    assert_string_equal(cfg.queues.v[0], "x");
    assert_string_equal(cfg.queues.v[1], "y");
    llmb_config_free(&test_set, &cfg);

    /* Flags replace the env; repeated flags and commas add up. */
    assert_int_equal(load(&cfg, NULL, &err, "-q", "p", "--queues", "q,r",
                          "--queues=s", NULL), 0);
    assert_int_equal(cfg.queues.n, 4);
    assert_string_equal(cfg.queues.v[0], "p");
    assert_string_equal(cfg.queues.v[1], "q");
    assert_string_equal(cfg.queues.v[2], "r");
    assert_string_equal(cfg.queues.v[3], "s");
    llmb_config_free(&test_set, &cfg);
}

static void test_positionals(void **state)
{
    struct test_config cfg;
    struct llmb_strlist pos = {0};
    char *err = NULL;
    (void)state;

    /* Subcommand first, options after, GNU-style interleaving. */
    assert_int_equal(load(&cfg, &pos, &err, "stats", "--json", "q1", "-c",
                          "2", "-", NULL), 0);
    assert_true(cfg.json);
    assert_int_equal(cfg.capacity, 2);
    assert_int_equal(pos.n, 3);
    assert_string_equal(pos.v[0], "stats");
    assert_string_equal(pos.v[1], "q1");
    assert_string_equal(pos.v[2], "-");
    llmb_config_free(&test_set, &cfg);
    llmb_strlist_clear(&pos);

    /* Options first, subcommand after. */
    assert_int_equal(load(&cfg, &pos, &err, "--json", "stats", NULL), 0);
    assert_true(cfg.json);
    assert_int_equal(pos.n, 1);
    assert_string_equal(pos.v[0], "stats");
    llmb_config_free(&test_set, &cfg);
    llmb_strlist_clear(&pos);

    /* "--" ends the options. */
    assert_int_equal(load(&cfg, &pos, &err, "push", "--", "--json", "-c",
                          "--", NULL), 0);
    assert_false(cfg.json);
    assert_int_equal(cfg.capacity, 4);
    assert_int_equal(pos.n, 4);
    assert_string_equal(pos.v[1], "--json");
    assert_string_equal(pos.v[2], "-c");
    assert_string_equal(pos.v[3], "--");
    llmb_config_free(&test_set, &cfg);
    llmb_strlist_clear(&pos);

    /* A value that looks like an option is still the value. */
    assert_int_equal(load(&cfg, &pos, &err, "--delta", "-5", "--name",
                          "--json", NULL), 0);
    assert_int_equal(cfg.delta, -5);
    assert_string_equal(cfg.name, "--json");
    assert_false(cfg.json);
    assert_int_equal(pos.n, 0);
    llmb_config_free(&test_set, &cfg);
}

static void test_flag_errors(void **state)
{
    (void)state;
    load_fails("unknown option \"--bogus\"; see llmb-test --help", "--bogus",
               NULL);
    load_fails("unknown option \"--bogus\"; see llmb-test --help",
               "--bogus=1", NULL);
    load_fails("unknown option \"-x\"; see llmb-test --help", "-x", NULL);
    load_fails("unknown option \"--no-capacity\"; see llmb-test --help",
               "--no-capacity", NULL);
    load_fails("--capacity needs a value (N)", "--capacity", NULL);
    load_fails("-c needs a value (N)", "-c", NULL);
    load_fails("--no-json takes no value", "--no-json=1", NULL);
    load_fails("-j takes no value, got \"-jx\"", "-jx", NULL);
    load_fails("--help takes no value", "--help=me", NULL);
    load_fails("--json must be true or false, got \"maybe\"", "--json=maybe",
               NULL);
}

/* A mistyped flag or key names the option meant; an old spelling works. */
static void test_suggestions(void **state)
{
    struct test_config cfg;
    struct llmb_strlist pos = {0};
    char *err = NULL, want[160];
    const char *path;

    (void)state;
    load_fails("unknown option \"--capactiy\"; did you mean --capacity? See "
               "llmb-test --help", "--capactiy", "3", NULL);
    load_fails("unknown option \"--jsn\"; did you mean --json? See llmb-test "
               "--help", "--jsn", NULL);
    load_fails("unknown option \"--no-colour\"; did you mean --no-color? See "
               "llmb-test --help", "--no-colour", NULL);
    load_fails("unknown option \"--dump\"; did you mean --dump-config? See "
               "llmb-test --help", "--dump", NULL);
    load_fails("unknown option \"--queu\"; did you mean --queues? See "
               "llmb-test --help", "--queu=a", NULL);

    assert_int_equal(load(&cfg, &pos, &err, "--queue", "a,b", NULL), 0);
    assert_int_equal(cfg.queues.n, 2);
    assert_string_equal(cfg.queues.v[1], "b");
    llmb_config_free(&test_set, &cfg);

    path = write_conf("queue = x\n");
    assert_int_equal(load(&cfg, &pos, &err, "--config", path, NULL), 0);
    assert_int_equal(cfg.queues.n, 1);
    assert_string_equal(cfg.queues.v[0], "x");
    llmb_config_free(&test_set, &cfg);
    unlink(path);

    path = write_conf("capacty = 3\n");
    snprintf(want, sizeof(want), "config file %s:1: unknown key \"capacty\"; "
             "did you mean \"capacity\"?", path);
    load_fails(want, "--config", path, NULL);
    llmb_strlist_clear(&pos);
}

static void test_ranges(void **state)
{
    struct test_config cfg;
    char *err = NULL;
    (void)state;

    load_fails("--capacity must be an integer from 1 to 100000, got \"x\"",
               "--capacity", "x", NULL);
    load_fails("--capacity must be an integer from 1 to 100000, got \"0\"",
               "-c0", NULL);
    load_fails("--capacity must be an integer from 1 to 100000, got "
               "\"100001\"", "--capacity=100001", NULL);
    load_fails("--delta must be an integer, got \"1.5\"", "--delta", "1.5",
               NULL);
    setenv("LLMB_CAPACITY", "lots", 1);
    load_fails("LLMB_CAPACITY must be an integer from 1 to 100000, got "
               "\"lots\"", NULL);
    /* A flag does not save a bad env value: every source is checked. */
    load_fails("LLMB_CAPACITY must be an integer from 1 to 100000, got "
               "\"lots\"", "-c", "3", NULL);
    unsetenv("LLMB_CAPACITY");

    assert_int_equal(load(&cfg, NULL, &err, "-c", "100000", NULL), 0);
    assert_int_equal(cfg.capacity, 100000);
    llmb_config_free(&test_set, &cfg);
    assert_int_equal(load(&cfg, NULL, &err, "-c", "1", NULL), 0);
    assert_int_equal(cfg.capacity, 1);
    llmb_config_free(&test_set, &cfg);
}

static void test_file_errors(void **state)
{
    char want[256];
    (void)state;

    write_conf("capacity = 2\n\n# fine\nfoo = 1\n");
    snprintf(want, sizeof(want), "config file %s:4: unknown key \"foo\"",
             conf_path);
    load_fails(want, "--config", conf_path, NULL);
    unlink(conf_path);

    write_conf("capacity = 2\njust words\n");
    snprintf(want, sizeof(want), "config file %s:2: expected \"key = "
             "value\", got \"just words\"", conf_path);
    load_fails(want, "--config", conf_path, NULL);
    unlink(conf_path);

    write_conf("capacity = many\n");
    snprintf(want, sizeof(want), "config file %s:1: capacity must be an "
             "integer from 1 to 100000, got \"many\"", conf_path);
    load_fails(want, "--config", conf_path, NULL);
    unlink(conf_path);

    write_conf("config = /etc/other\n");
    snprintf(want, sizeof(want), "config file %s:1: \"config\" cannot be set "
             "in a config file", conf_path);
    load_fails(want, "--config", conf_path, NULL);

    load_fails("cannot read config file /nonexistent/llmb.conf: No such file "
               "or directory", "--config", "/nonexistent/llmb.conf", NULL);
}

static void test_common_checks(void **state)
{
    (void)state;
    load_fails("--prefix must be letters, digits and _ . : - only, got "
               "\"a{b}\"", "--prefix", "a{b}", NULL);
    load_fails("--prefix must be letters, digits and _ . : - only, got "
               "\"\"", "--prefix=", NULL);
    setenv("LLMB_PREFIX", "has space", 1);
    load_fails("LLMB_PREFIX must be letters, digits and _ . : - only, got "
               "\"has space\"", NULL);
    unsetenv("LLMB_PREFIX");
    load_fails("--log-level must be debug, info, warn or error, got "
               "\"loud\"", "--log-level", "loud", NULL);
    load_fails("--redis: redis URL \"localhost\" must start with redis://, "
               "redis+cluster://, redis+sentinel:// or unix://", "--redis",
               "localhost", NULL);
    load_fails("--redis: llmb-test does not take a redis+cluster:// URL "
               "yet; see docs/operations.md, Redis Cluster",
               "--redis", "redis+cluster://127.0.0.1:7000", NULL);
}

/* A program with a Redis command time limit, as the worker has. */
struct timed_config {
    struct llmb_common common;
    long long redis_timeout_ms;
};

static const struct llmb_opt timed_opts[] = {
    {"redis-timeout-ms", 0, "LLMB_REDIS_TIMEOUT_MS", LLMB_OPT_INT, "2000",
     "MS", "Longest a Redis command may take.",
     offsetof(struct timed_config, redis_timeout_ms), 100, 600000, false},
};

static const struct llmb_opt_set timed_set = {
    "llmb-timed", "[OPTIONS]", "A program with a Redis time limit.",
    timed_opts, 1, NULL, 0, false,
};

static int load_timed(char **err, const char *a, const char *b,
                      const char *c)
{
    struct timed_config cfg;
    const char *argv[] = {"llmb-timed", a, b, c, NULL};
    int argc = c != NULL ? 4 : b != NULL ? 3 : a != NULL ? 2 : 1;
    int rc;

    *err = NULL;
    rc = llmb_config_load(&timed_set, &cfg, argc, (char **)argv, NULL, err);
    llmb_config_free(&timed_set, &cfg);
    return rc;
}

/* --wait-replicas-ms as long as --redis-timeout-ms is refused (a WAIT
 * would make the commands behind it time out); without --wait-replicas
 * it does not matter. */
static void test_wait_replicas_within_timeout(void **state)
{
    char *err = NULL;
    (void)state;

    assert_int_equal(load_timed(&err, "--wait-replicas=1",
                                "--wait-replicas-ms=1999", NULL), 0);
    assert_null(err);
    assert_int_equal(load_timed(&err, "--wait-replicas-ms=5000", NULL, NULL),
                     0);
    assert_null(err);
    assert_int_equal(load_timed(&err, "--wait-replicas=1",
                                "--wait-replicas-ms=2000", NULL),
                     LLMB_ECONFIG);
    assert_non_null(err);
    assert_string_equal(err, "--wait-replicas-ms (2000) must be less than "
                             "--redis-timeout-ms (2000): a WAIT holds its "
                             "connection, and the commands behind it would "
                             "time out");
    free(err);
    assert_int_equal(load_timed(&err, "--wait-replicas=2",
                                "--wait-replicas-ms=3000",
                                "--redis-timeout-ms=5000"), 0);
    assert_null(err);
}

/* Runs a load whose stdout goes to a file; returns what it printed. */
static char *load_printing(int *rc, ...)
{
    struct test_config cfg;
    char *argv[32], *err = NULL, *out;
    int argc = 0, saved;
    FILE *f = tmpfile();
    long n;
    va_list ap;

    argv[argc++] = (char *)"llmb-test";
    va_start(ap, rc);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    dup2(fileno(f), STDOUT_FILENO);
    *rc = llmb_config_load(&test_set, &cfg, argc, argv, NULL, &err);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    llmb_config_free(&test_set, &cfg);
    free(err);

    n = ftell(f);
    out = calloc(1, (size_t)n + 1);
    rewind(f);
    assert_int_equal(fread(out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return out;
}

static void test_help(void **state)
{
    char *out;
    int rc = 0;
    (void)state;

    out = load_printing(&rc, "-c", "3", "--help", "--bogus", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "Usage: llmb-test [OPTIONS] COMMAND [ARG...]"));
    assert_non_null(strstr(out, "A program that exists to test"));
    assert_non_null(strstr(out, "  -c, --capacity N\n"));
    assert_non_null(strstr(out, "Tasks run at once. [env: LLMB_CAPACITY] "
                                "[default: 4]"));
    assert_non_null(strstr(out, "--[no-]json"));
    assert_non_null(strstr(out, "--queues Q,..."));
    assert_non_null(strstr(out, "Comma-separated; the flag may repeat."));
    assert_non_null(strstr(out, "--redis URL"));
    assert_non_null(strstr(out, "[env: LLMB_REDIS_URL]"));
    assert_non_null(strstr(out, "--dump-config"));
    assert_non_null(strstr(out, "-h, --help"));
    free(out);

    out = load_printing(&rc, "-h", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "Usage: llmb-test"));
    free(out);

    out = load_printing(&rc, "--version", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "llmb-test " LLMB_VERSION_STRING " (lua "
                                "library "));
    free(out);
}

static void test_dump_roundtrip(void **state)
{
    struct test_config cfg;
    char *out, *err = NULL;
    int rc = 0;
    (void)state;

    setenv("LLMB_TOKEN", "tok-secret", 1);
    out = load_printing(&rc, "--dump-config", "--redis",
                        "redis://:hunter2@db:6380/1", "-c", "12", "--no-color",
                        "-q", "a,b", "--name", " padded ", NULL);
    assert_int_equal(rc, 1);
    assert_null(strstr(out, "hunter2"));
    assert_null(strstr(out, "tok-secret"));
    assert_non_null(strstr(out, "\nredis = redis://:***@db:6380/1\n"));
    assert_non_null(strstr(out, "\ntoken = ***\n"));
    assert_non_null(strstr(out, "\ncapacity = 12\n"));
    assert_non_null(strstr(out, "\ncolor = false\n"));
    assert_non_null(strstr(out, "\nqueues = a,b\n"));
    assert_non_null(strstr(out, "\nname = \" padded \"\n"));
    assert_non_null(strstr(out, "\n# Tasks run at once.\n"));
    unsetenv("LLMB_TOKEN");

    /* Loads back (with the secrets masked, so fix the URL first). */
    {
        char *p = strstr(out, "redis = redis://:***@db:6380/1");
        memcpy(p, "# ", 2);
    }
    write_conf(out);
    assert_int_equal(load(&cfg, NULL, &err, "--config", conf_path, NULL), 0);
    assert_int_equal(cfg.capacity, 12);
    assert_false(cfg.color);
    assert_int_equal(cfg.queues.n, 2);
    assert_string_equal(cfg.name, " padded ");
    assert_string_equal(cfg.token, "***");
    llmb_config_free(&test_set, &cfg);
    free(out);
}

static void test_markdown(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    (void)state;

    llmb_config_markdown(&test_set, f);
    fclose(f);
    assert_non_null(strstr(buf, "| flag | env | default | range | meaning |\n"
                                "| --- | --- | --- | --- | --- |\n"));
    assert_non_null(strstr(buf, "| `-c`, `--capacity N` | `LLMB_CAPACITY` | "
                                "`4` | 1..100000 | Tasks run at once. |\n"));
    assert_non_null(strstr(buf, "| `--[no-]color` |  | `true` |  | Use "
                                "colors. |\n"));
    assert_non_null(strstr(buf, "| `--redis URL` | `LLMB_REDIS_URL` | "
                                "`redis://127.0.0.1:6379` |"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positionals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suggestions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_common_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_markdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_replicas_within_timeout,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
