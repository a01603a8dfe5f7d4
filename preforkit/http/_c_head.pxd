# Types for the compiled twin of _head.py (preforkit/_accel.py); the Python module is the reference.
# _c_find_head_end, _c_latin1, _c_split_head and _c_new_head exist only here: the module calls
# them when compiled (WITH_C_HELPERS), each in place of the Python lines beside the call, and gives what
# those give.  _c_split_head accepts only what _split_head accepts and returns None for
# anything else (malformed, over a limit, a field name twice), so the Python lines decide
# every refusal: both paths refuse the same heads with the same status.
import cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_CheckExact, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.unicode cimport (
    PyUnicode_1BYTE_DATA,
    PyUnicode_1BYTE_KIND,
    PyUnicode_DecodeLatin1,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_New,
    PyUnicode_Substring,
)
from cpython.dict cimport PyDict_SetDefault, PyDict_Size
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.string cimport memchr, memcmp


cdef inline const char *_c_bytes_of(object buffer, Py_ssize_t *size):
    """The bytes of a bytes or bytearray ``buffer`` and their number; NULL for other types."""
    if PyByteArray_CheckExact(buffer):
        size[0] = PyByteArray_GET_SIZE(buffer)
        return PyByteArray_AS_STRING(buffer)
    if PyBytes_CheckExact(buffer):
        size[0] = PyBytes_GET_SIZE(buffer)
        return PyBytes_AS_STRING(buffer)
    return NULL


cdef inline Py_ssize_t _c_find_head_end(object buffer, Py_ssize_t start) except -2:
    """``buffer.find(b"\r\n\r\n", start)``."""
    cdef Py_ssize_t size
    cdef const char *data = _c_bytes_of(buffer, &size)
    cdef const char *at
    if data == NULL:
        return buffer.find(b"\r\n\r\n", start)
    while start + 4 <= size:
        at = <const char *>memchr(data + start, 13, size - start - 3)
        if at == NULL:
            return -1
        start = at - data
        if at[1] == 10 and at[2] == 13 and at[3] == 10:
            return start
        start += 1
    return -1


cdef inline str _c_latin1(object buffer, Py_ssize_t start, Py_ssize_t end):
    """``buffer[start:end].decode("latin-1")``."""
    cdef Py_ssize_t size
    cdef const char *data = _c_bytes_of(buffer, &size)
    if data == NULL:
        return buffer[start:end].decode("latin-1")
    return PyUnicode_DecodeLatin1(data + start, end - start, NULL)


cdef extern from "Python.h":
    PyTypeObject PyTuple_Type


cdef inline object _c_new_head(type cls, tuple values):
    """``tuple.__new__(cls, values)``, the constructor called from C (not through a wrapper)."""
    cdef tuple arguments = (values,)
    return PyTuple_Type.tp_new(cls, <PyObject *>arguments, NULL)


cdef inline bint _c_tchar(unsigned char c):
    """RFC 9110 §5.6.2 tchar (_abnf.TOKEN)."""
    if c >= 97:
        return c <= 122 or c == 124 or c == 126  # a-z | ~
    if c >= 65:
        return c <= 90 or c == 94 or c == 95 or c == 96  # A-Z ^ _ `
    if c >= 48:
        return c <= 57  # 0-9
    return c == 33 or (35 <= c <= 39) or c == 42 or c == 43 or c == 45 or c == 46  # ! #$%&' * + - .


# Field names made before, by a hash of their bytes: a client names the same fields in each
# head, and a name found here is one string fewer to make, with its hash already known.
cdef PyObject *_c_names[512]
DEF _C_NAME_MAX = 64  # longer names are made each time


cdef inline unsigned char _c_lower(unsigned char c):
    return c + 32 if 65 <= c <= 90 else c


cdef inline str _c_field_name(const unsigned char *raw, Py_ssize_t length):
    """The lower-case text of the field name ``raw[:length]`` (tchars, so ASCII)."""
    cdef size_t mark = <size_t>length
    cdef Py_ssize_t at
    cdef PyObject *known
    cdef unsigned char *lower
    for at in range(length):
        mark = mark * 31 + (raw[at] | 32)  # A-Z and a-z alike
    mark &= 511
    known = _c_names[mark]
    if known != NULL and PyUnicode_GET_LENGTH(<object>known) == length:
        lower = PyUnicode_1BYTE_DATA(<object>known)
        for at in range(length):
            if lower[at] != _c_lower(raw[at]):
                break
        else:
            return <str>known
    name = PyUnicode_New(length, 127)
    lower = PyUnicode_1BYTE_DATA(name)
    for at in range(length):
        lower[at] = _c_lower(raw[at])
    if length <= _C_NAME_MAX:
        Py_XDECREF(known)
        Py_INCREF(name)
        _c_names[mark] = <PyObject *>name
    return name


cdef inline object _c_split_head(str text, Py_ssize_t max_request_line, Py_ssize_t max_fields, Py_ssize_t max_field_size):
    """_split_head(text, limits) for a head it accepts with no field name twice; else None."""
    cdef const unsigned char *data
    cdef Py_ssize_t length, i, at, line_start, name_end, value_start, value_end, count
    cdef unsigned char c
    if PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND:  # always so for latin-1 text
        return None
    data = PyUnicode_1BYTE_DATA(text)
    length = PyUnicode_GET_LENGTH(text)

    # request-line = method SP request-target SP "HTTP/1." DIGIT (_abnf.request_line_re)
    i = 0
    while i < length and _c_tchar(data[i]):
        i += 1
    if i == 0 or i == length or data[i] != 32:
        return None
    method = PyUnicode_Substring(text, 0, i)
    i += 1
    at = i
    while i < length and 33 <= data[i] <= 126:
        i += 1
    if i == at or length - i < 9 or i + 9 > max_request_line:
        return None
    target = PyUnicode_Substring(text, at, i)
    if memcmp(data + i, b" HTTP/1.", 8) != 0 or not 48 <= data[i + 8] <= 57:
        return None  # not " HTTP/1.<digit>": the Python lines tell 400 from 505
    http_version = "1.0" if data[i + 8] == 48 else "1.1"  # RFC 9110 §2.5: 1.2+ is served as 1.1
    i += 9

    fields = []
    headers = {}
    count = 0
    while i < length:
        # each field line: CRLF field-name ":" OWS field-value OWS (_abnf.field_line_re)
        if data[i] != 13 or i + 1 == length or data[i + 1] != 10:
            return None
        count += 1
        if count > max_fields:
            return None
        i += 2
        line_start = i
        while i < length and _c_tchar(data[i]):
            i += 1
        if i == line_start or i == length or data[i] != 58:
            return None
        name_end = i
        i += 1
        value_start = -1
        value_end = i
        while i < length:
            c = data[i]
            if c == 13:
                break
            if c > 32 and c != 127:  # field-vchar: VCHAR / obs-text
                if value_start < 0:
                    value_start = i
                value_end = i + 1
            elif c != 32 and c != 9:  # a control character
                return None
            i += 1
        if i - line_start > max_field_size:
            return None
        name = _c_field_name(data + line_start, name_end - line_start)
        value = PyUnicode_Substring(text, value_start, value_end) if value_start >= 0 else ""
        PyDict_SetDefault(headers, name, value)
        fields.append((name, value))
        if PyDict_Size(headers) != count:
            return None  # a name twice: joined, and checked for fields that come once, by the Python lines
    return method, target, http_version, fields, headers, None


cpdef parse_head(str text, limits)

@cython.locals(headers=dict)
cpdef tuple _head_values(str text, limits)

@cython.locals(lines=list, fields=list, headers=dict, seen=dict, index=Py_ssize_t, max_field_size=Py_ssize_t)
cpdef tuple _split_head(str text, limits)

@cython.locals(values=tuple, fields=list, headers=dict)
cpdef _parse_remembered(dict known, dict sighted, str text, limits)

@cython.locals(field=tuple)
cpdef tuple _parse_field_line(str line)

cpdef _remember(dict cache, str key, value)

# HeadParser becomes an extension type (fields: HeadParser.__slots__): parse() reads its state
# as C struct fields, not through attribute lookups.
cdef class HeadParser:
    cdef public object _known
    cdef public object _max_head
    cdef public object _sighted
    cdef public object limits
