# Types for the compiled twin of _response.py (preforkit/_accel.py); the Python module is the reference.
# The helpers serialize_head calls once per header or per response become C calls.
import cython

@cython.locals(known=dict)
cpdef bytes status_line(status, str http_version=*)

@cython.locals(lines=list, cache=dict, length_lines=dict)
cpdef tuple serialize_head(status, headers, method, http_version, keep_alive, body_length, server)
cpdef bint body_allowed(status, method)
cpdef _items(headers)
cpdef list _valid_pairs(name, value)
cpdef str _field_value(str name, value)
