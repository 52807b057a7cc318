"""Square 200 numbers on GeoBatch, with a few failing on purpose, then look at what happened.

Run it with ``.venv/bin/python examples/squares.py``: with no GEOBATCH_API_URL it uses local
mode (started in the background; stop it with ``geobatch local down``).
"""

import geobatch as gb


def square(x):
    import os

    if x % 50 == 13:
        raise ValueError(f"{x} is unlucky")
    print(f"squaring {x} with K={os.environ.get('K')}")
    return x * x


def main() -> None:
    fn = gb.Function(
        square, name="squares", cpus=1, memory="2GB", maximum_concurrency=4, retry_count=1, timeout=60,
        environment={"K": "v"},
    )  # fmt: skip
    fn.save()
    fn.map([[i] for i in range(200)], tags=["example"])
    fn.wait_for_completion(timeout=600)
    print("counts per status:", fn.job_statistics)
    for job in fn.jobs.filter(gb.Job.status == gb.JobStatus.FAILURE):
        print(f"{job.id}: {job.error_reason} after {job.execution_count} attempts")
    results = sorted(fn.results())
    print(f"{len(results)} results, the first: {results[:5]}")
    fn.delete(delete_results=True)


if __name__ == "__main__":
    main()
