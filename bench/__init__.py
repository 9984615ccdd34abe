"""Province-scale benchmarks, run by `make bench`; see docs/BENCHMARKS.md."""

import resource


def peak_rss_mb():
    """This process's peak resident memory in MB (VmHWM).

    Not getrusage's ru_maxrss: Linux carries it across exec, so a child started from this bench
    would report the parent's peak, taken before the fork, as its own.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
