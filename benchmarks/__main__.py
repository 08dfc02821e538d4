"""`python -m benchmarks`: the latency and throughput benchmark, as `emotion-monitor bench`."""
from .cli import main

raise SystemExit(main())
