# Types for the compiled twin of wsgi.py (preforkit/_accel.py); the Python module is the reference.
import cython

cpdef dict make_environ(head, body, dict base, remote_addr, server_name, scheme, root_path=*)

@cython.locals(keys=dict, path=str)
cpdef dict _fill_environ(dict environ, head, body, remote_addr, server_name, scheme, root_path)

@cython.locals(codes=dict)
cpdef _status_code(status)

cdef class _ChannelTaker:
    cdef public object channel
    cdef public object websocket

cdef class WSGIAdapter:
    cdef public object app

cdef class _StartResponse:
    cdef public object status
    cdef public object headers
    cdef public list written
    cdef public bint sent

cdef class ConnectionEnvirons:
    cdef public tuple _key
    cdef public dict _last
    cdef public object _multiprocess
    cdef public object _remote_port
    cdef public object _server_port

    @cython.locals(key=tuple, environ=dict)
    cpdef repeated(self, head, body, remote_addr, scheme)
