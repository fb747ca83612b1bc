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
