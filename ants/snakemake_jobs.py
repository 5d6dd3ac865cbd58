"""What Snakemake's own terminal output says about the jobs of a run: the rule -> job count
table it prints before running or dry-running (``Job stats:``), and the line it prints when
nothing is out of date.

One parser for the tests (``tests/_workflow.py``) and the benchmarks
(``benchmarks/bench_workflow.py``), which both read ``snakemake -n`` output::

    >>> text = "Job stats:\\njob      count\\n-----  -------\\nall        1\\nscore      4\\ntotal      5\\n"
    >>> job_stats(text)
    {'all': 1, 'score': 4}
    >>> job_stats("Building DAG of jobs...\\n" + NOTHING)
    {}
"""

from __future__ import annotations

import re

#: what Snakemake prints when every requested file is present and up to date
NOTHING = "Nothing to be done (all requested files are present and up to date)."

_ROW = re.compile(r"^(\w+)\s+(\d+)$")


def job_stats(text: str) -> dict[str, int]:
    """Jobs per rule from the ``Job stats:`` table in Snakemake's output ``text`` (the
    ``total`` row left out); ``{}`` when Snakemake said there is nothing to be done.

    Raises ``ValueError`` when ``text`` has neither (a failed parse, not an empty plan).
    """
    if NOTHING in text:
        return {}
    if "Job stats:" not in text:
        raise ValueError(f"no 'Job stats:' table in Snakemake's output:\n{text[-2000:]}")
    jobs = {}
    for line in text.split("Job stats:", 1)[1].splitlines()[3:]:  # after the header and rule
        m = _ROW.match(line.strip())
        if not m:
            break
        jobs[m[1]] = int(m[2])
    jobs.pop("total", None)
    return jobs
