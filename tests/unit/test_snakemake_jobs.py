"""ants.snakemake_jobs: the job-stats table of Snakemake's output, as the tests and the
benchmarks read it."""

from __future__ import annotations

import pytest

from ants.snakemake_jobs import NOTHING, job_stats

#: Snakemake 9's dry-run output, cut to its first lines and the table
DRY_RUN = """Building DAG of jobs...
Job stats:
job          count
---------  -------
all            1
manifest       7
score         12
total         20

Reasons:
    (check individual jobs above for details)
    input files updated by another job:
        all
This was a dry-run (flag -n). The order of jobs does not reflect the order of execution.
"""


def test_the_table_rows_without_the_total():
    assert job_stats(DRY_RUN) == {"all": 1, "manifest": 7, "score": 12}
    assert sum(job_stats(DRY_RUN).values()) == 20


def test_nothing_to_be_done_is_no_jobs():
    assert job_stats(f"Building DAG of jobs...\n{NOTHING}\n") == {}


def test_output_without_a_table_is_an_error_not_an_empty_plan():
    with pytest.raises(ValueError, match="no 'Job stats:' table"):
        job_stats("Building DAG of jobs...\nMissingInputException in rule score\n")
