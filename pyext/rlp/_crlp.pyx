# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled RLP: raw codec and typed codec nodes.

The twin of ``ethnode/rlp/_pure.py``: same functions, same node classes and constructor
arguments, same bytes, same error classes and messages. Encoding writes into one growing
C buffer (a list header is patched in after its payload, shifting the payload only when
the header turns out longer than one byte); decoding walks the input once and builds the
final Python objects directly, with no intermediate items for typed schemas.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Append, PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_AsUnsignedLongLong, PyLong_FromUnsignedLongLong
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE, PyTuple_New, PyTuple_SET_ITEM
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memmove

from ethnode.rlp.errors import DecodingError, EncodingError
from ethnode.rlp.limits import MAX_DEPTH as _MAX_DEPTH

cdef extern from *:
    """
    #include <Python.h>
    /* Big-endian unsigned conversions between Python ints and bytes. 3.13 made the
       long-standing private helpers public under new names. */
    static int ethnode_long_to_be(PyObject *v, unsigned char *out, size_t n) {
    #if PY_VERSION_HEX >= 0x030D0000
        Py_ssize_t r = PyLong_AsNativeBytes(v, out, (Py_ssize_t)n,
            Py_ASNATIVEBYTES_BIG_ENDIAN | Py_ASNATIVEBYTES_UNSIGNED_BUFFER);
        return r < 0 ? -1 : 0;
    #else
        return _PyLong_AsByteArray((PyLongObject *)v, out, n, 0, 0);
    #endif
    }
    static PyObject *ethnode_long_from_be(const unsigned char *p, size_t n) {
    #if PY_VERSION_HEX >= 0x030D0000
        return PyLong_FromUnsignedNativeBytes(p, (Py_ssize_t)n, Py_ASNATIVEBYTES_BIG_ENDIAN);
    #else
        return _PyLong_FromByteArray(p, n, 0, 0);
    #endif
    }
    """
    int ethnode_long_to_be(object v, unsigned char *out, size_t n) except -1
    object ethnode_long_from_be(const unsigned char *p, size_t n)
    int _PyLong_Sign(object v)
    size_t _PyLong_NumBits(object v) except? <size_t>-1

BACKEND = "compiled"

cdef int MAX_DEPTH = _MAX_DEPTH
cdef tuple _BYTES_TYPES = (bytes, bytearray, memoryview)


# ---------------------------------------------------------------------------------------
# Output buffer
# ---------------------------------------------------------------------------------------

cdef struct Buf:
    unsigned char *data
    Py_ssize_t len
    Py_ssize_t cap


cdef int buf_init(Buf *b, Py_ssize_t cap) except -1:
    b.data = <unsigned char *>malloc(cap)
    if b.data == NULL:
        raise MemoryError()
    b.len = 0
    b.cap = cap
    return 0


cdef inline int buf_reserve(Buf *b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t need = b.len + extra
    cdef Py_ssize_t cap
    cdef unsigned char *p
    if need <= b.cap:
        return 0
    cap = b.cap * 2
    if cap < need:
        cap = need
    p = <unsigned char *>realloc(b.data, cap)
    if p == NULL:
        raise MemoryError()
    b.data = p
    b.cap = cap
    return 0


cdef inline int byte_len(unsigned long long n) noexcept:
    cdef int k = 0
    while n:
        k += 1
        n >>= 8
    return k


cdef inline void put_be(unsigned char *out, unsigned long long v, int n) noexcept:
    cdef int i
    for i in range(n - 1, -1, -1):
        out[i] = v & 0xFF
        v >>= 8


cdef inline int put_prefix(Buf *b, Py_ssize_t length, int offset) except -1:
    """Append a string (0x80) or list (0xC0) header for a payload of ``length`` bytes."""
    cdef int ll
    buf_reserve(b, 9)
    if length < 56:
        b.data[b.len] = offset + length
        b.len += 1
    else:
        ll = byte_len(length)
        b.data[b.len] = offset + 55 + ll
        put_be(b.data + b.len + 1, length, ll)
        b.len += 1 + ll
    return 0


cdef inline int put_string(Buf *b, const unsigned char *p, Py_ssize_t n) except -1:
    if n == 1 and p[0] < 0x80:
        buf_reserve(b, 1)
        b.data[b.len] = p[0]
        b.len += 1
        return 0
    put_prefix(b, n, 0x80)
    buf_reserve(b, n)
    memcpy(b.data + b.len, p, n)
    b.len += n
    return 0


cdef inline int put_bytes_obj(Buf *b, bytes value) except -1:
    return put_string(b, <const unsigned char *>PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))


cdef int put_uint(Buf *b, object value) except -1:
    """Append a non-negative exact-or-subclass int in canonical form."""
    cdef int sign = _PyLong_Sign(value)
    cdef size_t nbits
    cdef Py_ssize_t nb
    cdef unsigned long long v
    if sign < 0:
        raise EncodingError(f"cannot encode negative integer {value}")
    if sign == 0:
        buf_reserve(b, 1)
        b.data[b.len] = 0x80
        b.len += 1
        return 0
    nbits = _PyLong_NumBits(value)
    if nbits <= 64:
        v = PyLong_AsUnsignedLongLong(value)
        buf_reserve(b, 9)
        if v < 0x80:
            b.data[b.len] = <unsigned char>v
            b.len += 1
        else:
            nb = byte_len(v)
            b.data[b.len] = 0x80 + nb
            put_be(b.data + b.len + 1, v, nb)
            b.len += 1 + nb
        return 0
    nb = (nbits + 7) >> 3
    put_prefix(b, nb, 0x80)
    buf_reserve(b, nb)
    ethnode_long_to_be(value, b.data + b.len, nb)
    b.len += nb
    return 0


cdef inline int finish_list(Buf *b, Py_ssize_t start) except -1:
    """Write the header of the list whose payload began at ``start + 1``.

    One byte was reserved at ``start``; a long header shifts the payload right.
    """
    cdef Py_ssize_t payload = b.len - start - 1
    cdef int ll
    if payload < 56:
        b.data[start] = 0xC0 + payload
        return 0
    ll = byte_len(payload)
    buf_reserve(b, ll)
    memmove(b.data + start + 1 + ll, b.data + start + 1, payload)
    b.data[start] = 0xF7 + ll
    put_be(b.data + start + 1, payload, ll)
    b.len += ll
    return 0


cdef inline Py_ssize_t open_list(Buf *b) except -1:
    cdef Py_ssize_t start = b.len
    buf_reserve(b, 1)
    b.len += 1
    return start


cdef object buf_finish(Buf *b):
    try:
        return PyBytes_FromStringAndSize(<char *>b.data, b.len)
    finally:
        free(b.data)
        b.data = NULL


# ---------------------------------------------------------------------------------------
# Raw encode
# ---------------------------------------------------------------------------------------

cdef int encode_obj(Buf *b, object obj, int depth) except -1:
    cdef type t = type(obj)
    cdef Py_ssize_t start, i, n
    if t is bytes:
        return put_bytes_obj(b, <bytes>obj)
    if t is int:
        return put_uint(b, obj)
    if t is list:
        if depth >= MAX_DEPTH:
            raise EncodingError(f"lists nested deeper than {MAX_DEPTH}")
        start = open_list(b)
        n = PyList_GET_SIZE(obj)
        i = 0
        while i < PyList_GET_SIZE(obj):
            encode_obj(b, <object>PyList_GET_ITEM(obj, i), depth + 1)
            i += 1
        return finish_list(b, start)
    if t is tuple or isinstance(obj, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise EncodingError(f"lists nested deeper than {MAX_DEPTH}")
        start = open_list(b)
        if isinstance(obj, tuple):
            n = PyTuple_GET_SIZE(obj)
            for i in range(n):
                encode_obj(b, <object>PyTuple_GET_ITEM(obj, i), depth + 1)
        else:
            for item in list(obj):
                encode_obj(b, item, depth + 1)
        return finish_list(b, start)
    if isinstance(obj, _BYTES_TYPES):
        return put_bytes_obj(b, bytes(obj))
    if isinstance(obj, int):
        return put_uint(b, int(obj))
    raise EncodingError(f"cannot RLP-encode object of type {t.__name__}")


def encode(obj):
    """Canonical RLP of bytes-like values, non-negative ints and nested lists/tuples."""
    cdef Buf b
    buf_init(&b, 256)
    try:
        encode_obj(&b, obj, 0)
    except BaseException:
        free(b.data)
        raise
    return buf_finish(&b)


# ---------------------------------------------------------------------------------------
# Raw decode
# ---------------------------------------------------------------------------------------

cdef struct Hdr:
    bint is_list
    Py_ssize_t start
    Py_ssize_t stop


cdef inline int read_long_length(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int ll,
                                 Hdr *h) except -1:
    cdef Py_ssize_t start = pos + 1 + ll
    cdef unsigned long long n = 0
    cdef Py_ssize_t i
    if start > end:
        raise DecodingError("length of length runs past the end of data")
    if d[pos + 1] == 0:
        raise DecodingError("length has leading zero bytes")
    for i in range(pos + 1, start):
        n = (n << 8) | d[i]
    if n < 56:
        raise DecodingError("long-form length used for a length below 56")
    if n > <unsigned long long>(end - start):
        raise DecodingError("item length runs past the end of its container")
    h.start = start
    h.stop = start + <Py_ssize_t>n
    return 0


cdef inline int read_header(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, Hdr *h) except -1:
    """Parse one item header with every canonical-form rule (see _pure.item_header)."""
    cdef unsigned char b0
    cdef Py_ssize_t n
    if pos >= end:
        raise DecodingError("unexpected end of data")
    b0 = d[pos]
    if b0 < 0x80:
        h.is_list = False
        h.start = pos
        h.stop = pos + 1
        return 0
    if b0 < 0xB8:
        n = b0 - 0x80
        if n == 1 and pos + 1 < end and d[pos + 1] < 0x80:
            raise DecodingError("single byte below 0x80 must not have a string prefix")
        h.is_list = False
        h.start = pos + 1
        h.stop = pos + 1 + n
    elif b0 < 0xC0:
        h.is_list = False
        return read_long_length(d, pos, end, b0 - 0xB7, h)
    elif b0 < 0xF8:
        h.is_list = True
        h.start = pos + 1
        h.stop = pos + 1 + (b0 - 0xC0)
    else:
        h.is_list = True
        return read_long_length(d, pos, end, b0 - 0xF7, h)
    if h.stop > end:
        raise DecodingError("item length runs past the end of its container")
    return 0


cdef object decode_item(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                        Py_ssize_t *nxt):
    cdef Hdr h
    cdef Py_ssize_t p
    cdef list items
    read_header(d, pos, end, &h)
    nxt[0] = h.stop
    if not h.is_list:
        return PyBytes_FromStringAndSize(<const char *>d + h.start, h.stop - h.start)
    if depth >= MAX_DEPTH:
        raise DecodingError(f"lists nested deeper than {MAX_DEPTH}")
    items = []
    p = h.start
    while p < h.stop:
        PyList_Append(items, decode_item(d, p, h.stop, depth + 1, &p))
    return items


cdef Py_ssize_t skip_item(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth) except -1:
    """Validate one item exactly as decode_item would, without building objects."""
    cdef Hdr h
    cdef Py_ssize_t p
    read_header(d, pos, end, &h)
    if h.is_list:
        if depth >= MAX_DEPTH:
            raise DecodingError(f"lists nested deeper than {MAX_DEPTH}")
        p = h.start
        while p < h.stop:
            p = skip_item(d, p, h.stop, depth + 1)
    return h.stop


cdef inline bytes as_bytes(object data):
    if type(data) is bytes:
        return <bytes>data
    if isinstance(data, _BYTES_TYPES):
        return bytes(data)
    raise TypeError(f"RLP input must be bytes-like, not {type(data).__name__}")


cdef inline int check_trailing(Py_ssize_t end, Py_ssize_t n) except -1:
    if end != n:
        raise DecodingError(f"{n - end} trailing bytes after the RLP item")
    return 0


def decode(data):
    """Decode exactly one canonical item spanning all of ``data``: bytes or nested lists."""
    cdef bytes buf = as_bytes(data)
    cdef Py_ssize_t end = 0
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    item = decode_item(<const unsigned char *>PyBytes_AS_STRING(buf), 0, n, 0, &end)
    check_trailing(end, n)
    return item


def item_header(data, Py_ssize_t pos, Py_ssize_t end):
    """(is_list, payload_start, payload_end) of the item at ``pos``; see _pure.item_header."""
    cdef bytes buf = as_bytes(data)
    cdef Hdr h
    if pos < 0 or end > PyBytes_GET_SIZE(buf) or pos > end:
        raise ValueError("pos/end outside the data")
    read_header(<const unsigned char *>PyBytes_AS_STRING(buf), pos, end, &h)
    return bool(h.is_list), h.start, h.stop


# ---------------------------------------------------------------------------------------
# Typed codec nodes (built from ethnode.rlp.sedes schemas)
# ---------------------------------------------------------------------------------------

cdef inline int expect_string(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, Hdr *h,
                              str what) except -1:
    read_header(d, pos, end, h)
    if h.is_list:
        raise DecodingError(f"expected {what}, got a list")
    return 0


cdef inline int expect_list(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                            Hdr *h) except -1:
    read_header(d, pos, end, h)
    if not h.is_list:
        raise DecodingError("expected a list, got a byte string")
    if depth >= MAX_DEPTH:
        raise DecodingError(f"lists nested deeper than {MAX_DEPTH}")
    return 0


cdef inline bytes bytes_value(object value, str what):
    if type(value) is bytes:
        return <bytes>value
    if isinstance(value, _BYTES_TYPES):
        return bytes(value)
    raise EncodingError(f"{what} must be bytes-like, not {type(value).__name__}")


cdef inline int check_sequence(object value, int depth) except -1:
    if not isinstance(value, (list, tuple)):
        raise EncodingError(f"list or tuple expected, not {type(value).__name__}")
    if depth >= MAX_DEPTH:
        raise EncodingError(f"lists nested deeper than {MAX_DEPTH}")
    return 0


cdef class _Node:
    """Shared entry points; subclasses implement ``read`` and ``enc``."""

    cdef object read(self, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                     Py_ssize_t *nxt):
        raise NotImplementedError

    cdef int enc(self, Buf *b, object value, int depth) except -1:
        raise NotImplementedError

    def decode(self, data):
        cdef bytes buf = as_bytes(data)
        cdef Py_ssize_t end = 0
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        value = self.read(<const unsigned char *>PyBytes_AS_STRING(buf), 0, n, 0, &end)
        check_trailing(end, n)
        return value

    def encode(self, value):
        cdef Buf b
        buf_init(&b, 256)
        try:
            self.enc(&b, value, 0)
        except BaseException:
            free(b.data)
            raise
        return buf_finish(&b)


cdef class BytesNode(_Node):
    cdef readonly Py_ssize_t min_length
    cdef readonly Py_ssize_t max_length

    def __init__(self, Py_ssize_t min_length, Py_ssize_t max_length):
        self.min_length = min_length
        self.max_length = max_length

    cdef int check(self, Py_ssize_t n, object error) except -1:
        if n < self.min_length or (self.max_length >= 0 and n > self.max_length):
            raise error(f"byte string of length {n} outside [{self.min_length}, {self.max_length}]")
        return 0

    cdef object read(self, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                     Py_ssize_t *nxt):
        cdef Hdr h
        expect_string(d, pos, end, &h, "a byte string")
        self.check(h.stop - h.start, DecodingError)
        nxt[0] = h.stop
        return PyBytes_FromStringAndSize(<const char *>d + h.start, h.stop - h.start)

    cdef int enc(self, Buf *b, object value, int depth) except -1:
        cdef bytes v = bytes_value(value, "value")
        self.check(PyBytes_GET_SIZE(v), EncodingError)
        return put_bytes_obj(b, v)


cdef class FixedBytesNode(_Node):
    cdef readonly Py_ssize_t length
    cdef readonly bint nullable
    cdef str what
    cdef str value_what

    def __init__(self, Py_ssize_t length, bint nullable):
        self.length = length
        self.nullable = nullable
        self.what = f"{length} bytes"
        self.value_what = f"{length}-byte value"

    cdef object read(self, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                     Py_ssize_t *nxt):
        cdef Hdr h
        cdef Py_ssize_t n
        expect_string(d, pos, end, &h, self.what)
        n = h.stop - h.start
        nxt[0] = h.stop
        if n != self.length:
            if n == 0 and self.nullable:
                return None
            raise DecodingError(f"expected {self.length} bytes, got {n}")
        return PyBytes_FromStringAndSize(<const char *>d + h.start, n)

    cdef int enc(self, Buf *b, object value, int depth) except -1:
        cdef bytes v
        if value is None and self.nullable:
            buf_reserve(b, 1)
            b.data[b.len] = 0x80
            b.len += 1
            return 0
        v = bytes_value(value, self.value_what)
        if PyBytes_GET_SIZE(v) != self.length:
            raise EncodingError(f"expected {self.length} bytes, got {PyBytes_GET_SIZE(v)}")
        return put_bytes_obj(b, v)


cdef class UIntNode(_Node):
    cdef readonly Py_ssize_t max_bytes

    def __init__(self, Py_ssize_t max_bytes):
        self.max_bytes = max_bytes

    cdef object read(self, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                     Py_ssize_t *nxt):
        cdef Hdr h
        cdef Py_ssize_t n, i
        cdef unsigned long long v = 0
        expect_string(d, pos, end, &h, "an integer")
        nxt[0] = h.stop
        n = h.stop - h.start
        if n == 0:
            return 0
        if d[h.start] == 0:
            raise DecodingError("integer has leading zero bytes")
        if 0 <= self.max_bytes < n:
            raise DecodingError(f"integer of {n} bytes exceeds {self.max_bytes} bytes")
        if n <= 8:
            for i in range(h.start, h.stop):
                v = (v << 8) | d[i]
            return PyLong_FromUnsignedLongLong(v)
        return ethnode_long_from_be(d + h.start, n)

    cdef int enc(self, Buf *b, object value, int depth) except -1:
        if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
            raise EncodingError(f"integer expected, not {type(value).__name__}")
        if _PyLong_Sign(value) < 0:
            raise EncodingError(f"cannot encode negative integer {value}")
        if self.max_bytes >= 0 and _PyLong_NumBits(value) > <size_t>(8 * self.max_bytes):
            raise EncodingError(f"integer {value} exceeds {8 * self.max_bytes} bits")
        return put_uint(b, value)


cdef class BooleanNode(_Node):
    cdef object read(self, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                     Py_ssize_t *nxt):
        cdef Hdr h
        expect_string(d, pos, end, &h, "a boolean")
        nxt[0] = h.stop
        if h.stop == h.start:
            return False
        if h.stop - h.start == 1 and d[h.start] == 1:
            return True
        raise DecodingError("invalid boolean encoding")

    cdef int enc(self, Buf *b, object value, int depth) except -1:
        buf_reserve(b, 1)
        if value is True:
            b.data[b.len] = 0x01
        elif value is False:
            b.data[b.len] = 0x80
        else:
            raise EncodingError(f"bool expected, not {type(value).__name__}")
        b.len += 1
        return 0


cdef class RawNode(_Node):
    cdef object read(self, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                     Py_ssize_t *nxt):
        cdef Py_ssize_t stop = skip_item(d, pos, end, depth)
        nxt[0] = stop
        return PyBytes_FromStringAndSize(<const char *>d + pos, stop - pos)

    cdef int enc(self, Buf *b, object value, int depth) except -1:
        cdef bytes v = bytes_value(value, "raw RLP")
        cdef Py_ssize_t n = PyBytes_GET_SIZE(v)
        cdef Py_ssize_t stop
        try:
            stop = skip_item(<const unsigned char *>PyBytes_AS_STRING(v), 0, n, depth)
        except DecodingError as exc:
            raise EncodingError(f"raw value is not valid RLP: {exc}") from None
        if stop != n:
            raise EncodingError("raw value holds more than one RLP item")
        buf_reserve(b, n)
        memcpy(b.data + b.len, PyBytes_AS_STRING(v), n)
        b.len += n
        return 0


cdef class ListNode(_Node):
    cdef readonly _Node element
    cdef readonly Py_ssize_t max_length

    def __init__(self, _Node element, Py_ssize_t max_length):
        self.element = element
        self.max_length = max_length

    cdef object read(self, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                     Py_ssize_t *nxt):
        cdef Hdr h
        cdef Py_ssize_t p, count = 0
        cdef list items = []
        cdef _Node el = self.element
        expect_list(d, pos, end, depth, &h)
        p = h.start
        while p < h.stop:
            if count == self.max_length:
                raise DecodingError(f"list longer than {self.max_length} items")
            PyList_Append(items, el.read(d, p, h.stop, depth + 1, &p))
            count += 1
        nxt[0] = h.stop
        return items

    cdef int enc(self, Buf *b, object value, int depth) except -1:
        cdef Py_ssize_t start, i, n
        cdef _Node el = self.element
        check_sequence(value, depth)
        n = len(value)
        if 0 <= self.max_length < n:
            raise EncodingError(f"list longer than {self.max_length} items")
        start = open_list(b)
        if isinstance(value, tuple):
            for i in range(n):
                el.enc(b, <object>PyTuple_GET_ITEM(value, i), depth + 1)
        else:
            i = 0
            while i < PyList_GET_SIZE(value):
                el.enc(b, <object>PyList_GET_ITEM(value, i), depth + 1)
                i += 1
        return finish_list(b, start)


cdef class TupleNode(_Node):
    cdef readonly tuple elements
    cdef readonly Py_ssize_t required
    cdef readonly bint allow_extra
    cdef readonly object record

    def __init__(self, elements, Py_ssize_t required, bint allow_extra, record):
        self.elements = tuple(elements)
        for el in self.elements:
            if not isinstance(el, _Node):
                raise TypeError("TupleNode elements must be compiled nodes")
        self.required = required
        self.allow_extra = allow_extra
        self.record = record

    cdef object read(self, const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, int depth,
                     Py_ssize_t *nxt):
        cdef Hdr h
        cdef Py_ssize_t p, i = 0
        cdef Py_ssize_t n = PyTuple_GET_SIZE(self.elements)
        cdef tuple values = PyTuple_New(n)
        cdef object v
        expect_list(d, pos, end, depth, &h)
        p = h.start
        while i < n and p < h.stop:
            v = (<_Node>PyTuple_GET_ITEM(self.elements, i)).read(d, p, h.stop, depth + 1, &p)
            Py_INCREF(v)
            PyTuple_SET_ITEM(values, i, v)
            i += 1
        if i < self.required:
            raise DecodingError(f"expected at least {self.required} elements, got {i}")
        if p < h.stop:
            if not self.allow_extra:
                raise DecodingError(f"more than {n} elements")
            while p < h.stop:
                p = item_stop(d, p, h.stop)
        while i < n:
            Py_INCREF(None)
            PyTuple_SET_ITEM(values, i, None)
            i += 1
        nxt[0] = h.stop
        if self.record is None:
            return values
        return tuple.__new__(self.record, values)

    cdef int enc(self, Buf *b, object value, int depth) except -1:
        cdef Py_ssize_t n, present, start, i
        cdef Py_ssize_t ne = PyTuple_GET_SIZE(self.elements)
        cdef tuple seq
        if self.record is not None and not isinstance(value, self.record):
            raise EncodingError(f"{self.record.__name__} expected, not {type(value).__name__}")
        check_sequence(value, depth)
        seq = <tuple>value if isinstance(value, tuple) else tuple(value)
        n = PyTuple_GET_SIZE(seq)
        if n > ne:
            raise EncodingError(f"more than {ne} elements")
        present = n
        while present > self.required and <object>PyTuple_GET_ITEM(seq, present - 1) is None:
            present -= 1
        if present < self.required:
            raise EncodingError(f"expected at least {self.required} elements, got {present}")
        start = open_list(b)
        for i in range(present):
            item = <object>PyTuple_GET_ITEM(seq, i)
            if i >= self.required and item is None:
                raise EncodingError("an optional field is absent but a later one is present")
            (<_Node>PyTuple_GET_ITEM(self.elements, i)).enc(b, item, depth + 1)
        return finish_list(b, start)


cdef inline Py_ssize_t item_stop(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end) except -1:
    cdef Hdr h
    read_header(d, pos, end, &h)
    return h.stop
