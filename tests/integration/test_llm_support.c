/*
 * The llm tests' helpers (test_llm_support.h). The mock runs as a child
 * process whose stdout is a pipe: its first line names the port it got.
 * /mock/stats is read with a blocking libcurl request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <llmb/util.h>

#include "test_llm_support.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void lm_mock_start(struct lm_mock *m, const char *const *flags)
{
    const char *script = getenv("LLMB_MOCK_LLM");
    const char *argv[48];
    int k = 0, fds[2];
    char line[256], *colon = NULL, *host;
    FILE *f;

    memset(m, 0, sizeof(*m));
    if (script == NULL)
        fail_msg("LLMB_MOCK_LLM is not set");
    argv[k++] = "python3";
    argv[k++] = "-S";
    argv[k++] = script;
    argv[k++] = "--port";
    argv[k++] = "0";
    argv[k++] = "--quiet";
    for (int i = 0; flags != NULL && flags[i] != NULL && k < 46; i++)
        argv[k++] = flags[i];
    argv[k] = NULL;
    assert_int_equal(pipe(fds), 0);
    m->pid = fork();
    assert_true(m->pid >= 0);
    if (m->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    assert_non_null(f);
    /* "mock-llm listening on HOST:PORT", HOST 127.0.0.1 unless --host */
    if (fgets(line, sizeof(line), f) == NULL ||
        strncmp(line, "mock-llm listening on ", 22) != 0 ||
        (colon = strrchr(line, ':')) == NULL ||
        sscanf(colon + 1, "%d", &m->port) != 1)
        fail_msg("the mock LLM server did not start (%s)", script);
    fclose(f);
    if (colon == NULL)
        return;
    *colon = '\0';
    host = line + 22;
    /* an IPv6 address goes in brackets */
    m->url = strchr(host, ':') != NULL ?
             llmb_xasprintf("http://[%s]:%d", host, m->port) :
             llmb_xasprintf("http://%s:%d", host, m->port);
}

void lm_mock_stop(struct lm_mock *m)
{
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        for (int i = 0; i < 200; i++) {
            if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
                m->pid = 0;
                break;
            }
            sleep_ms(10);
        }
        if (m->pid > 0) {
            kill(m->pid, SIGKILL);
            waitpid(m->pid, NULL, 0);
        }
    }
    free(m->url);
    memset(m, 0, sizeof(*m));
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    llmb_buf_append(arg, p, size * n);
    return size * n;
}

char *lm_endpoint(const char *name, const char *url)
{
    const char *client = getenv("LLMB_TEST_LLM_CLIENT");

    return client != NULL
               ? llmb_xasprintf("%s=%s,client=%s", name, url, client)
               : llmb_xasprintf("%s=%s", name, url);
}

json_t *lm_mock_stats(const struct lm_mock *m)
{
    CURL *e = curl_easy_init();
    char *url = llmb_xasprintf("%s/mock/stats", m->url);
    struct llmb_buf b;
    json_t *o;

    llmb_buf_init(&b);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(e) != CURLE_OK)
        fail_msg("GET %s failed", url);
    curl_easy_cleanup(e);
    o = json_loadb(b.data, b.len, 0, NULL);
    if (o == NULL)
        fail_msg("/mock/stats is not JSON: %s", b.data);
    llmb_buf_fini(&b);
    free(url);
    return o;
}

/* The run delay of process pid (its threads' summed), in ns, or -1 once
 * it is gone. */
static long long run_delay_ns(pid_t pid)
{
    char path[32];
    DIR *d;
    struct dirent *e;
    long long sum = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        unsigned long long run, wait;
        char stat[sizeof(path) + sizeof(e->d_name) + 16];
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(stat, sizeof(stat), "%s/%s/schedstat", path, e->d_name);
        f = fopen(stat, "r");
        /* a thread may be gone since readdir */
        if (f != NULL && fscanf(f, "%llu %llu", &run, &wait) == 2)
            sum += (long long)wait;
        if (f != NULL)
            fclose(f);
    }
    closedir(d);
    return sum;
}

/* The watching child: reads until stop is closed, then writes the sum of
 * the largest growths, in ms, to out. */
static void watch(const pid_t *pids, int n, int stop, int out)
{
    long long last[8], most[8] = {0};
    struct pollfd p = {.fd = stop, .events = POLLIN};
    char line[64];
    double sum = 0;
    int len;

    for (int i = 0; i < n; i++)
        last[i] = run_delay_ns(pids[i]);
    while (poll(&p, 1, 1) == 0) {
        for (int i = 0; i < n; i++) {
            long long now = run_delay_ns(pids[i]);
            if (now >= 0 && last[i] >= 0 && now - last[i] > most[i])
                most[i] = now - last[i];
            last[i] = now;
        }
    }
    for (int i = 0; i < n; i++)
        sum += (double)most[i] / 1e6;
    len = snprintf(line, sizeof(line), "%.3f\n", sum);
    if (write(out, line, (size_t)len) != len)
        _exit(1);
}

void lm_cpu_wait_start(struct lm_cpu_wait *w, const pid_t *pids, int n)
{
    int stop[2], out[2];

    assert_true(n <= 8);
    assert_int_equal(pipe(stop), 0);
    assert_int_equal(pipe(out), 0);
    w->pid = fork();
    assert_true(w->pid >= 0);
    if (w->pid == 0) {
        close(stop[1]);
        close(out[0]);
        watch(pids, n, stop[0], out[1]);
        _exit(0);
    }
    close(stop[0]);
    close(out[1]);
    /* not held by the processes started later: the child stops when the
     * test does, even one that failed before lm_cpu_wait_stop() */
    fcntl(stop[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    w->stop = stop[1];
    w->out = out[0];
}

double lm_cpu_wait_stop(struct lm_cpu_wait *w)
{
    char line[64] = "";
    double ms;
    ssize_t got;

    close(w->stop);
    got = read(w->out, line, sizeof(line) - 1);
    close(w->out);
    waitpid(w->pid, NULL, 0);
    if (got <= 0 || sscanf(line, "%lf", &ms) != 1)
        fail_msg("the CPU wait watch gave no answer");
    return ms;
}

/* lm_setup and lm_setup_sends: with sends, the mock's flags get
 * --log-sends <the harness's dir>/sends.jsonl. */
static void setup(struct lm *t, const char *name,
                  const char *const *mock_flags,
                  const char *const *worker_args, int sends)
{
    const char *args[32], *flags[40];
    char *ep;
    int k = 0, n = 0;

    memset(t, 0, sizeof(*t));
    if (wh_init(&t->h, name) != 0)
        fail_msg("cannot set up the worker harness");
    for (int i = 0; mock_flags != NULL && mock_flags[i] != NULL && n < 37;
         i++)
        flags[n++] = mock_flags[i];
    if (sends) {
        t->sends = llmb_xasprintf("%s/sends.jsonl", t->h.dir);
        flags[n++] = "--log-sends";
        flags[n++] = t->sends;
    }
    flags[n] = NULL;
    lm_mock_start(&t->mock, flags);
    ep = lm_endpoint("mock", t->mock.url);
    args[k++] = "--llm-endpoint";
    args[k++] = ep;
    args[k++] = "--capacity";
    args[k++] = "8";
    for (int i = 0; worker_args != NULL && worker_args[i] != NULL && k < 30;
         i++)
        args[k++] = worker_args[i];
    args[k] = NULL;
    wh_worker_start(&t->h, args);
    free(ep);
}

void lm_setup(struct lm *t, const char *name, const char *const *mock_flags,
              const char *const *worker_args)
{
    setup(t, name, mock_flags, worker_args, 0);
}

void lm_setup_sends(struct lm *t, const char *name,
                    const char *const *mock_flags,
                    const char *const *worker_args)
{
    setup(t, name, mock_flags, worker_args, 1);
}

json_t *lm_mock_sends(const struct lm *t)
{
    json_t *all = json_array();
    char line[65536]; /* about 3,000 chunks' times */
    FILE *f;

    assert_non_null(t->sends);
    f = fopen(t->sends, "r");
    if (f == NULL)
        fail_msg("cannot open the mock's send log %s", t->sends);
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *o = json_loads(line, 0, NULL);
        json_t *sent = json_object_get(o, "sent_s");

        if (!json_is_array(sent))
            fail_msg("%s: not a send log line: %.200s", t->sends, line);
        json_array_append(all, sent);
        json_decref(o);
    }
    fclose(f);
    return all;
}

void lm_teardown(struct lm *t)
{
    /* A clean stop, so that a sanitizer build checks for leaks: the worker
     * must exit 0 (LeakSanitizer exits 23). */
    int bad = 0;

    for (int i = 0; i < t->h.nworkers; i++) {
        pid_t pid = t->h.workers[i];
        if (pid <= 0)
            continue;
        kill(pid, SIGTERM);
        if (wh_worker_wait(&t->h, pid, 20000) != 0 && bad == 0) {
            wh_dump_logs(&t->h);
            bad = (int)pid;
        }
    }
    lm_mock_stop(&t->mock);
    wh_fini(&t->h);
    free(t->sends);
    t->sends = NULL;
    if (bad != 0)
        fail_msg("llmb-worker %d did not exit 0 after SIGTERM", bad);
}

char *lm_run(struct lm *t, const char *doc, int timeout_ms, char **id)
{
    *id = wh_push(&t->h, "default", doc);
    return wh_wait_state(&t->h, "default", *id, "completed|failed|cancelled",
                         timeout_ms);
}

json_t *lm_run_ok(struct lm *t, const char *doc, int timeout_ms)
{
    char *id = NULL;
    char *st = lm_run(t, doc, timeout_ms, &id);
    json_t *res;

    if (strcmp(st, "completed") != 0) {
        char *err = lm_job_error(t, id);
        wh_dump_logs(&t->h);
        fail_msg("job %s ended %s, not completed (error: %s)", id, st,
                 err != NULL ? err : "none");
    }
    res = lm_result(t, id, 0);
    free(st);
    free(id);
    return res;
}

json_t *lm_run_all_ok(struct lm *t, int requests, int concurrency,
                      const char *more)
{
    char *doc = llmb_xasprintf("{\"type\":\"llm\",\"payload\":{"
                               "\"model\":\"m\",\"prompt\":\"x\","
                               "\"requests\":%d,\"concurrency\":%d,%s}}",
                               requests, concurrency, more);
    json_t *res = lm_run_ok(t, doc, 60000);

    free(doc);
    assert_int_equal(lm_num(res, "summary.ok"), requests);
    return res;
}

json_t *lm_result(struct lm *t, const char *id, int index)
{
    char *text = wh_task(&t->h, "default", id, index, "result");
    json_t *o;

    if (text == NULL) {
        char *err = wh_task(&t->h, "default", id, index, "error");
        wh_dump_logs(&t->h);
        fail_msg("task %d of job %s has no result (error: %s)", index, id,
                 err != NULL ? err : "none");
    }
    o = json_loads(text, 0, NULL);
    if (o == NULL)
        fail_msg("task result is not JSON: %s", text);
    free(text);
    return o;
}

char *lm_job_error(struct lm *t, const char *id)
{
    return wh_job(&t->h, "default", id, "error");
}

double lm_num(const json_t *o, const char *path)
{
    char *copy = llmb_xstrdup(path);
    const json_t *v = o;

    for (char *save = NULL, *k = strtok_r(copy, ".", &save); k != NULL;
         k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    if (!json_is_number(v)) {
        char *s = json_dumps(o, JSON_COMPACT);
        fail_msg("%s is not a number in %.2000s", path, s);
    }
    free(copy);
    return json_number_value(v);
}

int lm_state_new(void **state)
{
    *state = llmb_xcalloc(1, sizeof(struct lm));
    return 0;
}

int lm_state_free(void **state)
{
    struct lm *t = *state;

    lm_teardown(t);
    free(t);
    return 0;
}
