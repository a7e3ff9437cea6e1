"""Quality gates on the batch outputs."""

import dagster as dg
import pandas as pd

from ecod_assets.partitions import ecod_batches


@dg.asset_check(
    asset="domain_partition",
    blocking=True,
    partitions_def=ecod_batches,
    description="Every chain appears; domains lie inside their chain and never overlap.",
)
def domain_partition_is_consistent(domain_partition: pd.DataFrame) -> dg.AssetCheckResult:
    domains = domain_partition[domain_partition["domain_number"] > 0].sort_values(
        ["chain_id", "start"]
    )
    outside = domains[(domains["start"] < 1) | (domains["end"] > domains["chain_length"])]
    previous_end = domains.groupby("chain_id")["end"].shift()
    overlapping = domains[domains["start"] <= previous_end]
    problems = len(outside) + len(overlapping)
    return dg.AssetCheckResult(
        passed=problems == 0,
        metadata={
            "domains_outside_chain": len(outside),
            "overlapping_domains": len(overlapping),
            "first_problem_chain": str(pd.concat([outside, overlapping])["chain_id"].iloc[0])
            if problems
            else "",
        },
    )


CHECKS = [domain_partition_is_consistent]
