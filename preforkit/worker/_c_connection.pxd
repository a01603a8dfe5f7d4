# Types for the compiled twin of _connection.py (preforkit/_accel.py); the Python module is the reference.
# Connection becomes an extension type: its own methods reach its state as C struct fields.
# Every field stays a Python object (any value the Python module may store); keep them in
# step with Connection.__slots__ (tests/test_accel.py checks).

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.errno cimport EAGAIN, EINTR, errno

cdef extern from "<sys/socket.h>":
    ssize_t recv(int fd, void *buffer, size_t length, int flags)

cdef char _first_bytes[65536]  # RECV_SIZE; one read at a time (no switch can happen inside one)


cdef inline object _bytes_waiting_now(int fd):
    """_bytes_waiting(), with recv(2) from C: no BlockingIOError raised and caught
    for a client whose request has not arrived yet (most, under load)."""
    cdef ssize_t length
    while True:
        length = recv(fd, _first_bytes, sizeof(_first_bytes), 0)
        if length >= 0:
            return PyBytes_FromStringAndSize(_first_bytes, length)
        if errno == EAGAIN:
            return None
        if errno != EINTR:
            return b""


cdef class _CompiledState:
    pass

cdef class Connection(_CompiledState):
    cdef public object _environs
    cdef public object _held
    cdef public object _hub
    cdef public object _read_watcher
    cdef public object _write_watcher
    cdef public object buffer
    cdef public object channel
    cdef public object closed
    cdef public object closing
    cdef public object fd
    cdef public object head_started
    cdef public object held
    cdef public object local
    cdef public object peer
    cdef public object remote_addr
    cdef public object request_id
    cdef public object responder
    cdef public object served
    cdef public object server
    cdef public object sock
    cdef public object state
    cdef public object timed_out
    cdef public object tls
    cdef public object trusted
    cdef public object waiting_since
    cdef public object waiting_write

    # Called on self from compiled code: a C call, not a Python method lookup (~500 instructions).
    cpdef _read_head(self, bint readable)
    cpdef _serve_one(self, bint readable)
