# Types for the compiled twin of _head.py (preforkit/_accel.py); the Python module is the reference.
import cython

@cython.locals(lines=list, fields=list, headers=dict, seen=dict, index=Py_ssize_t, max_field_size=Py_ssize_t)
cpdef parse_head(str text, limits)

@cython.locals(values=tuple, fields=list, headers=dict)
cpdef _parse_remembered(dict known, str text, limits)

@cython.locals(field=tuple)
cpdef tuple _parse_field_line(str line)

cpdef _remember(dict cache, str key, value)
