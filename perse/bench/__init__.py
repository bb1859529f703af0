"""`perse.bench`: developer benchmarks and soak checks, kept as code (outside the runtime packages).

    engine       the figures of ``perse bench``: render, expression frame/update, look change, train step,
                 drive tracking and jitter (`run_bench`, `median_ms`, `machine_description`)
    accuracy     closed-loop, stability and jitter checks of driving (``python -m perse.bench.accuracy``)
    soak         live driving for many minutes on a looped video (``python -m perse.bench.soak``)
    fit_speed    the warm per-frame head fit alone (`measure_tracking_speed`)
"""

from perse.bench.engine import machine_description, median_ms, run_bench

__all__ = ["machine_description", "median_ms", "run_bench"]
