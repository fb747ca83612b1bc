"""Deep-learning workbench: interactive panels over a Qt-free compute backend."""

__version__ = "0.1.0"


def one_blas_thread() -> None:
    """Have numpy's BLAS (OpenBLAS) run on one thread unless the environment says otherwise. The app
    computes on one worker thread per panel beside the GUI thread; on a 2-core machine a second BLAS
    thread that spin-waits between small matrix products starves the GUI thread (the soak measured
    the longest GUI wait on a compute 17.7 ms with two BLAS threads, 12.5 ms with one, and a depth-12
    gradient pass 40x slower while another process ran). Must run before numpy is first imported."""
    import os

    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    same_blas_kernels_on_every_cpu()


def same_blas_kernels_on_every_cpu() -> None:
    """Have OpenBLAS use its Haswell kernels on every x86-64 CPU with AVX2 and FMA, unless
    OPENBLAS_CORETYPE says otherwise. It picks kernels by CPU, and they add in different orders
    (AVX-512's, Sandy Bridge's); the training panel's 45,000 SGD steps carry those last-bit
    differences into visibly different runs (one card's scene: train loss 0.373 with Haswell's
    kernels, 0.356 with Sandy Bridge's), so a question card's numbers held only on the CPU they were
    read on. Linux only (reads /proc/cpuinfo); must run before numpy is first imported."""
    import os

    if "OPENBLAS_CORETYPE" in os.environ:
        return
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return
    if {"avx2", "fma"} <= set(flags):
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"
