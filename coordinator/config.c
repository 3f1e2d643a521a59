/*
 * llmb-coordinator's option table. Defaults, the config file, LLMB_*
 * environment variables, flags, --help and --dump-config all come from it
 * (llmb/config.h); docs/coordinator.md lists the same options.
 */
#include <stddef.h>

#include "coordinator.h"

#define OPT_INT(name, env, def, meta, min, max, field, help)                 \
    {name, 0, env, LLMB_OPT_INT, def, meta, help,                           \
     offsetof(struct llmb_coord_config, field), min, max, false}

static const struct llmb_opt coord_opts[] = {
    {"id", 0, "LLMB_COORDINATOR_ID", LLMB_OPT_STR, NULL, "ID",
     "Name of this coordinator in logs and its Redis client name "
     "(llmb-coordinator:ID); default <host>-<pid>.",
     offsetof(struct llmb_coord_config, id), 0, 0, false},
    OPT_INT("tick-ms", "LLMB_TICK_MS", "200", "MS", 10, 60000, tick_ms,
            "Period of the coordinator's tick; each tick does a bounded "
            "batch of reaping, aggregation and retention."),
    OPT_INT("liveness-ms", "LLMB_LIVENESS_MS", "500", "MS", 10, 60000,
            liveness_ms,
            "How often the live worker connections are read (CLIENT LIST)."),
    OPT_INT("gone-after-ms", "LLMB_GONE_AFTER_MS", "2000", "MS", 0, 86400000,
            gone_after_ms,
            "A registered worker with no connection left for this long is "
            "dead and its tasks go back at once (0 turns this check off)."),
    OPT_INT("dead-after-ms", "LLMB_DEAD_AFTER_MS", "30000", "MS", 100,
            86400000, dead_after_ms,
            "A worker whose heartbeat (seen_ms) is older than this is dead, "
            "even if still connected."),
    OPT_INT("reconnect-grace-ms", "LLMB_RECONNECT_GRACE_MS", "10000", "MS", 0,
            86400000, reconnect_grace_ms,
            "After the coordinator's own connection came back, missing "
            "worker connections are not held against workers this long "
            "(they may be reconnecting too)."),
    OPT_INT("worker-retention-s", "LLMB_WORKER_RETENTION_S", "3600", "S", 0,
            31536000, worker_retention_s,
            "Dead worker records are deleted this long after their last "
            "heartbeat."),
    OPT_INT("retention-s", "LLMB_RETENTION_S", "604800", "S", 0, 315360000,
            retention_s,
            "Finished jobs and their task results are deleted this long "
            "after they end (0 keeps them); written to every queue's "
            "<base>:conf."),
    OPT_INT("events-max", "LLMB_EVENTS_MAX", "10000", "N", 1, 100000000,
            events_max,
            "Approximate length cap of each queue's events stream; written "
            "to <base>:conf."),
    OPT_INT("dead-max", "LLMB_DEAD_MAX", "10000", "N", 1, 100000000, dead_max,
            "Most failed jobs kept in each queue's dead set; written to "
            "<base>:conf."),
    {"write-conf", 0, "LLMB_WRITE_CONF", LLMB_OPT_BOOL, "true", NULL,
     "Write retention-s, events-max and dead-max into every queue's "
     "<base>:conf (--no-write-conf leaves <base>:conf to the operator).",
     offsetof(struct llmb_coord_config, write_conf), 0, 0, false},
    OPT_INT("reap-limit", "LLMB_REAP_LIMIT", "1000", "N", 1, 100000,
            reap_limit,
            "Expired leases, due delayed tasks and past deadlines handled "
            "per queue per tick (deadlines: a tenth of it), in calls of at "
            "most 250."),
    OPT_INT("agg-lease-ms", "LLMB_AGG_LEASE_MS", "60000", "MS", 100, 86400000,
            agg_lease_ms,
            "A job taken for aggregation is taken again by any coordinator "
            "after this long if its aggregate was not stored."),
    OPT_INT("agg-batch", "LLMB_AGG_BATCH", "64", "N", 1, 1000, agg_batch,
            "Finished jobs aggregated at the same time."),
    OPT_INT("agg-budget-ms", "LLMB_AGG_BUDGET_MS", "50", "MS", 1, 10000,
            agg_budget_ms,
            "Time spent reading task results per tick; a big job is "
            "aggregated over several ticks."),
    OPT_INT("agg-max-bytes", "LLMB_AGG_MAX_BYTES", "4194304", "N", 65536,
            536870912, agg_max_bytes,
            "Largest aggregate stored for a job, in bytes: a larger one "
            "leaves out its groups' timelines, then its groups, then its "
            "timeline, then its fields, until it fits, and names what it "
            "left out in \"dropped\"."),
    OPT_INT("scan-batch", "LLMB_SCAN_BATCH", "500", "N", 1, 100000,
            scan_batch,
            "Ids of a queue's <base>:jl checked per tick (trims the "
            "ids of jobs that are gone and counts job states)."),
    OPT_INT("metrics-ms", "LLMB_METRICS_MS", "1000", "MS", 100, 3600000,
            metrics_ms,
            "How often cluster metrics are collected and written to "
            "<prefix>:metrics."),
    {"metrics-addr", 0, "LLMB_METRICS_ADDR", LLMB_OPT_STR, "", "HOST:PORT",
     "Serve GET /metrics (Prometheus text) and GET /healthz here; empty "
     "turns the server off.",
     offsetof(struct llmb_coord_config, metrics_addr), 0, 0, false},
    OPT_INT("load-degraded-pct", "LLMB_LOAD_DEGRADED_PCT", "90", "PCT", 1,
            100, load_degraded_pct,
            "Health is degraded while cluster load is above this percentage "
            "of capacity."),
    OPT_INT("redis-timeout-ms", "LLMB_REDIS_TIMEOUT_MS", "2000", "MS", 100,
            600000, redis_timeout_ms,
            "Limit of the connect and of every Redis command."),
};

const struct llmb_opt_set llmb_coord_opt_set = {
    "llmb-coordinator",
    "[OPTIONS]",
    "Keeps llmb queues healthy: detects dead workers (closed connections "
    "or missing heartbeats) and gives their tasks back, takes back expired "
    "leases, promotes due delayed tasks, fails jobs past their deadline, "
    "aggregates finished jobs, applies retention and keeps cluster metrics "
    "in <prefix>:metrics (and on --metrics-addr). Any number may run at "
    "once. Runs until SIGTERM or SIGINT; never exits because Redis is away.",
    coord_opts,
    sizeof(coord_opts) / sizeof(coord_opts[0]),
    NULL,
    0,
    true,
};
