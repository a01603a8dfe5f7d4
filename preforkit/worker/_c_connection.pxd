# Types for the compiled twin of _connection.py (preforkit/_accel.py); the Python module is the reference.
# Connection becomes an extension type: its own methods reach its state as C struct fields.
# Every field stays a Python object (any value the Python module may store); keep them in
# step with Connection.__slots__ (tests/test_accel.py checks).

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
