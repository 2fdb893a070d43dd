"""Memory figures of this process for the Python reference side of the benches.

torch's tensors are malloc'd, not Python objects, so tracemalloc cannot see them; the
kernel's resident-set accounting can (/proc/self/status), and its high-water mark can be
reset through /proc/self/clear_refs.
"""


def status_bytes(key):
    """VmRSS, VmHWM, ... of /proc/self/status in bytes; -1 when absent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return -1


def reset_hwm():
    """Resets VmHWM to the current resident set; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
