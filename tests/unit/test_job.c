/*
 * Client-side job documents (lib/job.c): what llmb-push builds from its
 * flags, and every value it must refuse before a round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <llmb/job.h>
#include <llmb/keys.h>

static char *build(const struct llmb_job_args *a, char **errstr)
{
    struct llmb_buf b;

    *errstr = NULL;
    llmb_buf_init(&b);
    if (llmb_job_doc_build(a, &b, errstr) != 0) {
        assert_int_equal(b.len, 0);
        llmb_buf_fini(&b);
        return NULL;
    }
    return llmb_buf_steal(&b);
}

static void test_minimal_and_full(void **state)
{
    struct llmb_job_args a;
    char *err, *doc;

    (void)state;
    memset(&a, 0, sizeof(a));
    a.type = "echo";
    doc = build(&a, &err);
    assert_string_equal(doc, "{\"type\":\"echo\"}");
    free(doc);

    a.queue = "gpu";
    a.id = "run-7";
    a.priority = "-5";
    a.tasks = "100";
    a.timeout_s = "2.5";
    a.max_retries = "0";
    a.delay_s = "10";
    a.backoff_ms = "250";
    a.deadline_s = "3600";
    a.payload = "{\"seed\": 12345678901234567890, \"a\": []}";
    doc = build(&a, &err);
    assert_string_equal(doc,
        "{\"type\":\"echo\",\"queue\":\"gpu\",\"id\":\"run-7\",\"priority\":-5,"
        "\"tasks\":100,\"timeout_s\":2.5,\"max_retries\":0,\"delay_s\":10,"
        "\"backoff_ms\":250,\"deadline_s\":3600,"
        "\"payload\":{\"seed\": 12345678901234567890, \"a\": []}}");
    free(doc);
}

static void test_rejects_with_specific_messages(void **state)
{
    static const struct {
        const char *field, *value, *msg;
    } cases[] = {
        {"type", "", "job type must be 1 to 128 characters from [A-Za-z0-9_.:/-], got \"\""},
        {"type", "a b", "job type must be 1 to 128 characters from [A-Za-z0-9_.:/-], got \"a b\""},
        {"queue", "a{b}", "--queue must be 1 to 64 characters from [A-Za-z0-9_.-], got \"a{b}\""},
        {"id", "x:1", "--id must be 1 to 128 characters from [A-Za-z0-9_.-], got \"x:1\""},
        {"priority", "high", "--priority must be an integer from -1000000 to 1000000, got \"high\""},
        {"priority", "1000001", "--priority must be an integer from -1000000 to 1000000, got \"1000001\""},
        {"priority", "1.5", "--priority must be an integer from -1000000 to 1000000, got \"1.5\""},
        {"tasks", "0", "--tasks must be an integer from 1 to 100000, got \"0\""},
        {"tasks", "-1", "--tasks must be an integer from 1 to 100000, got \"-1\""},
        {"tasks", "1e3", "--tasks must be an integer from 1 to 100000, got \"1e3\""},
        {"timeout_s", "0", "--timeout must be a number from 0.001 to 604800, got \"0\""},
        {"timeout_s", "inf", "--timeout must be a number from 0.001 to 604800, got \"inf\""},
        {"timeout_s", " 5", "--timeout must be a number from 0.001 to 604800, got \" 5\""},
        {"max_retries", "101", "--retries must be an integer from 0 to 100, got \"101\""},
        {"delay_s", "-1", "--delay must be a number from 0 to 31536000, got \"-1\""},
        {"backoff_ms", "0", "--backoff-ms must be an integer from 1 to 3600000, got \"0\""},
        {"deadline_s", "x", "--deadline must be a number from 0 to 31536000, got \"x\""},
        {"payload", "{bad", "payload is not valid JSON: string or '}' expected near 'bad' (line 1, column 4)"},
        {"payload", "{\"a\":\"\xff\"}", "payload is not valid JSON:"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct llmb_job_args a;
        char *err, *doc;

        memset(&a, 0, sizeof(a));
        a.type = "t";
        if (strcmp(cases[i].field, "type") == 0) a.type = cases[i].value;
        if (strcmp(cases[i].field, "queue") == 0) a.queue = cases[i].value;
        if (strcmp(cases[i].field, "id") == 0) a.id = cases[i].value;
        if (strcmp(cases[i].field, "priority") == 0) a.priority = cases[i].value;
        if (strcmp(cases[i].field, "tasks") == 0) a.tasks = cases[i].value;
        if (strcmp(cases[i].field, "timeout_s") == 0) a.timeout_s = cases[i].value;
        if (strcmp(cases[i].field, "max_retries") == 0) a.max_retries = cases[i].value;
        if (strcmp(cases[i].field, "delay_s") == 0) a.delay_s = cases[i].value;
        if (strcmp(cases[i].field, "backoff_ms") == 0) a.backoff_ms = cases[i].value;
        if (strcmp(cases[i].field, "deadline_s") == 0) a.deadline_s = cases[i].value;
        if (strcmp(cases[i].field, "payload") == 0) a.payload = cases[i].value;
        doc = build(&a, &err);
        if (doc != NULL)
            fail_msg("accepted %s=%s as %s", cases[i].field, cases[i].value, doc);
        assert_non_null(err);
        if (strncmp(err, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("%s=%s: got \"%s\", want \"%s\"", cases[i].field,
                     cases[i].value, err, cases[i].msg);
        free(err);
    }
}

/* llmb_job_fields_append on doc: the ten values joined with '|', or the
 * error message. Caller frees. */
static char *fields(const char *doc, char *queue)
{
    struct llmb_buf b, out;
    size_t lens[LLMB_PUSH_NFIELDS], i, off = 0;
    char q[LLMB_QUEUE_NAME_MAX + 1];
    char *errstr = NULL;

    llmb_buf_init(&b);
    llmb_buf_append(&b, "x", 1); /* appended after what is there */
    if (llmb_job_fields_append(doc, strlen(doc), &b, lens, q, &errstr) != 0) {
        assert_int_equal(b.len, 1);
        llmb_buf_fini(&b);
        return errstr;
    }
    llmb_buf_init(&out);
    for (i = 0; i < LLMB_PUSH_NFIELDS; i++) {
        llmb_buf_appendf(&out, "%s%.*s", i > 0 ? "|" : "", (int)lens[i],
                         b.data + 1 + off);
        off += lens[i];
    }
    assert_int_equal(b.len, 1 + off);
    if (queue != NULL)
        strcpy(queue, q);
    llmb_buf_fini(&b);
    return llmb_buf_steal(&out);
}

static void test_fields_of_documents(void **state)
{
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"{\"type\":\"echo\"}\n", "|echo||||||||"},
        {" { \"payload\" : [1, 2 ,{\"k\":\"}]\\\"\"}] , \"type\" : \"a/b:c\" ,"
         "\"priority\":-3,\"tasks\":4e0 , \"id\":\"j-1\",\"timeout_s\":2.50,"
         "\"max_retries\":0,\"backoff_ms\":250,\"delay_s\":1.5,"
         "\"deadline_s\":60}\r\n",
         "j-1|a/b:c|[1, 2 ,{\"k\":\"}]\\\"\"}]|-3|4e0|2.50|0|250|1.5|60"},
        /* numbers go as written, whatever they are: the server checks */
        {"{\"type\":\"t\",\"priority\":\"high\",\"tasks\":null,\"payload\":12345678901234567890}",
         "|t|12345678901234567890|\"high\"|null|||||"},
        /* an escaped key is the key it spells; the last of a repeated
         * key counts, as in llmb_push */
        {"{\"ty\\u0070e\":\"t\",\"payload\":1,\"payload\":{\"a\":[]}}",
         "|t|{\"a\":[]}|||||||"},
        {"[1]", "job document must be a JSON object"},
        {"{\"type\":", "job document is not valid JSON: "},
        {"{\"payload\":{}}", "job field \"type\" is required"},
        {"{\"type\":\"t\",\"zz\":1}",
         "job field \"zz\" is not known (known fields: type, queue, payload, "
         "priority, tasks, timeout_s, max_retries, delay_s, id, backoff_ms, "
         "deadline_s)"},
        {"{\"type\":5}",
         "job field \"type\" must be a string of 1 to 128 characters from "
         "[A-Za-z0-9_.:/-], got 5"},
        {"{\"type\":\"a b\"}",
         "job field \"type\" must be a string of 1 to 128 characters from "
         "[A-Za-z0-9_.:/-], got \"a b\""},
        {"{\"type\":\"t\",\"id\":\"x:1\"}",
         "job field \"id\" must be a string of 1 to 128 characters from "
         "[A-Za-z0-9_.-], got \"x:1\""},
        {"{\"type\":\"t\",\"queue\":\"a{b}\"}",
         "job field \"queue\" must be a string of 1 to 64 characters from "
         "[A-Za-z0-9_.-], got \"a{b}\""},
        {"{\"type\":\"t\",\"queue\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
         "job field \"queue\" must be a string of 1 to 64 characters from "
         "[A-Za-z0-9_.-], got \"012345678901234567890123456789012345..."},
    };
    char queue[LLMB_QUEUE_NAME_MAX + 1];
    char deep[2100];
    size_t i;
    char *got;

    (void)state;
    /* as deep as cjson decodes (the document is one level), and one more */
    for (i = 0; i < 2; i++) {
        size_t levels = 999 + i, k, at;
        at = (size_t)snprintf(deep, sizeof(deep), "{\"type\":\"t\",\"payload\":");
        for (k = 0; k < levels; k++)
            deep[at++] = '[';
        for (k = 0; k < levels; k++)
            deep[at++] = ']';
        deep[at++] = '}';
        deep[at] = '\0';
        got = fields(deep, NULL);
        if (i == 0)
            assert_int_equal(got[0], '|');
        else
            assert_string_equal(got, "job document is not valid JSON: Found "
                                     "too many nested data structures (1001)");
        free(got);
    }
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        got = fields(cases[i].doc, NULL);
        if (strncmp(got, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("%s:\n got %s\nwant %s", cases[i].doc, got, cases[i].want);
        free(got);
    }
    free(fields("{\"type\":\"t\",\"queue\":\"gpu\"}", queue));
    assert_string_equal(queue, "gpu");
    free(fields("{\"type\":\"t\"}", queue));
    assert_string_equal(queue, "");
}

static void test_names(void **state)
{
    char long_id[130];

    (void)state;
    assert_true(llmb_queue_name_ok("a-b_c.d9"));
    assert_false(llmb_queue_name_ok(""));
    assert_false(llmb_queue_name_ok("a:b"));
    memset(long_id, 'a', 129);
    long_id[129] = '\0';
    assert_false(llmb_job_id_ok(long_id));
    long_id[128] = '\0';
    assert_true(llmb_job_id_ok(long_id));
    assert_true(llmb_job_type_ok("llm/chat:v1"));
}

static void test_name_refusal(void **state)
{
    char *m;

    (void)state;
    m = llmb_name_refusal("--queue", "queue name", "a:b", 64);
    assert_string_equal(m, "--queue must be a queue name of 1 to 64 "
                           "characters from [A-Za-z0-9_.-], got \"a:b\"");
    free(m);
    m = llmb_name_refusal(NULL, "queue name", "a{b}", 64);
    assert_string_equal(m, "queue name \"a{b}\" must be 1 to 64 characters "
                           "from [A-Za-z0-9_.-]");
    free(m);
}

/* A job has ended once completed or failed; a cancelled one once none
 * of its tasks still runs. */
static void test_ended(void **state)
{
    (void)state;
    assert_true(llmb_job_ended("completed", 0));
    assert_true(llmb_job_ended("failed", 3));
    assert_true(llmb_job_ended("cancelled", 0));
    assert_false(llmb_job_ended("cancelled", 2));
    assert_false(llmb_job_ended("running", 0));
    assert_false(llmb_job_ended("pending", 1));

    assert_true(llmb_job_state_final("completed"));
    assert_true(llmb_job_state_final("failed"));
    assert_true(llmb_job_state_final("cancelled"));
    assert_false(llmb_job_state_final("running"));
    assert_false(llmb_job_state_final("pending"));
    assert_false(llmb_job_state_final("done"));
    assert_int_equal(llmb_job_state_parse("cancelled"), LLMB_JOB_CANCELLED);
    assert_int_equal(llmb_job_state_parse("Pending"), -1);
    for (int i = 0; i < LLMB_JOB_NSTATES; i++)
        assert_int_equal(llmb_job_state_parse(
                             llmb_job_state_name((enum llmb_job_state)i)), i);
}

static void test_keys(void **state)
{
    char *k;

    (void)state;
    k = llmb_key_queue("llmb", "default");
    assert_string_equal(k, "llmb:{default}");
    free(k);
    k = llmb_key_queue_sub("p", "q", "j:abc");
    assert_string_equal(k, "p:{q}:j:abc");
    free(k);
    k = llmb_key_global("llmb", "workers");
    assert_string_equal(k, "llmb:workers");
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_and_full),
        cmocka_unit_test(test_rejects_with_specific_messages),
        cmocka_unit_test(test_fields_of_documents),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_name_refusal),
        cmocka_unit_test(test_ended),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
