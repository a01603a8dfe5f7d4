# Types for the compiled twin of wsgi.py (preforkit/_accel.py); the Python module is the reference.
import cython

@cython.locals(keys=dict, path=str)
cpdef dict _fill_environ(dict environ, head, body, remote_addr, server_name, scheme, root_path)

@cython.locals(codes=dict)
cpdef _status_code(status)

cdef class _ChannelTaker:
    cdef public object channel
    cdef public object websocket

@cython.locals(taker=_ChannelTaker)
cdef _ChannelTaker _channel_taker(websocket)

cdef class WSGIAdapter:
    cdef public object app

cdef class _StartResponse:
    cdef public object status
    cdef public object headers
    cdef public list written
    cdef public bint sent

cdef class ConnectionEnvirons:
    cdef public object _listener_host
    cdef public object _multiprocess
    cdef public str _remote_port
    cdef public object _root_path
    cdef public str _server_port

    @cython.locals(made=tuple, known=tuple, environ=dict, kept=dict, base=dict, cache=dict)
    cpdef dict make(self, head, body, remote_addr, scheme)

cpdef str server_name(host, listener_host)

cpdef dict base_environ(str remote_port, str server_port, multiprocess)
