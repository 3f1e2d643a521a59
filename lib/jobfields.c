/* The job hash fields (include/llmb/jobfields.h). */
#include <stdlib.h>

#include <llmb/jobfields.h>
#include <llmb/util.h>

const struct llmb_job_field llmb_job_fields[] = {
    {"id", LLMB_FK_STR},           {"queue", LLMB_FK_STR},
    {"type", LLMB_FK_STR},         {"state", LLMB_FK_STR},
    {"payload", LLMB_FK_JSON},     {"priority", LLMB_FK_INT},
    {"tasks", LLMB_FK_INT},        {"timeout_s", LLMB_FK_NUM},
    {"max_retries", LLMB_FK_INT},  {"backoff_ms", LLMB_FK_INT},
    {"delay_s", LLMB_FK_NUM},      {"deadline_ms", LLMB_FK_INT},
    {"created_ms", LLMB_FK_INT},   {"started_ms", LLMB_FK_INT},
    {"finished_ms", LLMB_FK_INT},  {"cancelled_ms", LLMB_FK_INT},
    {"left", LLMB_FK_INT},         {"ok", LLMB_FK_INT},
    {"failed", LLMB_FK_COUNT},     {"cancelled", LLMB_FK_COUNT},
    {"retried", LLMB_FK_COUNT},    {"timeouts", LLMB_FK_COUNT},
    {"lost", LLMB_FK_COUNT},       {"error", LLMB_FK_STR},
    {"expired", LLMB_FK_BOOL},     {"aggregate", LLMB_FK_JSON},
    {"aggregated_ms", LLMB_FK_INT},
    {"next", LLMB_FK_INT},         {"ahead", LLMB_FK_INT},
    {"version", LLMB_FK_COUNT},
};

const size_t llmb_job_nfields =
    sizeof(llmb_job_fields) / sizeof(llmb_job_fields[0]);

void llmb_job_read_cmd(struct llmb_strlist *cmd, const char *base,
                       const char *id)
{
    llmb_strlist_clear(cmd);
    llmb_strlist_push(cmd, "FCALL_RO");
    llmb_strlist_push(cmd, "llmb_job");
    llmb_strlist_push(cmd, "1");
    llmb_strlist_push(cmd, base);
    llmb_strlist_push(cmd, id);
}

void llmb_job_fields_cmd(struct llmb_strlist *cmd, const char *base,
                         const char *id)
{
    llmb_job_read_cmd(cmd, base, id);
    for (size_t i = 0; i < llmb_job_nfields; i++)
        llmb_strlist_push(cmd, llmb_job_fields[i].name);
}

redisReply *llmb_job_fields_read(struct llmb_conn *c, const char *base,
                                 const char *id)
{
    struct llmb_strlist cmd = {0};
    redisReply *r;

    llmb_job_fields_cmd(&cmd, base, id);
    r = llmb_conn_commandargv(c, (int)cmd.n, (const char **)cmd.v, NULL);
    llmb_strlist_clear(&cmd);
    return r;
}
