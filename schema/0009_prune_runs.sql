-- One row per run of the pruner (`tally serve`'s schedule or `tally prune`), so that `tally
-- audit` can prove it ran recently and what it dropped. `collector` is the host name of the
-- machine that ran it; no visitor data. Partitioned by month and pruned with the aggregates.
CREATE TABLE IF NOT EXISTS prune_runs (
    run_at DateTime('UTC'),
    collector String,
    dry_run UInt8,
    partitions UInt32,
    rows UInt64,
    failed UInt8,
    message String
) ENGINE = MergeTree
PARTITION BY toYYYYMM(run_at)
ORDER BY run_at;
