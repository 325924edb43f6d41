"""ONNX's protobuf wire format, walked without parsing: a ModelProto's bytes with the large
initializer payloads cut out, and where each payload sits (cnngraph.frontends.onnx_weights).

Only three levels are entered: ModelProto.graph (field 7), GraphProto.initializer (field 5)
and the TensorProto's own fields; every other field is copied byte for byte. A tensor loses
its payload when it has exactly one candidate (raw_data of a plain numeric type, or packed
float_data / double_data), is longer than ``inline_bytes``, and has no segment or external
data location.
"""

from libc.string cimport memcpy

ctypedef unsigned char uchar

cdef enum:
    MODEL_GRAPH = 7
    GRAPH_INITIALIZER = 5
    T_DATA_TYPE = 2
    T_SEGMENT = 3
    T_FLOAT_DATA = 4
    T_NAME = 8
    T_RAW_DATA = 9
    T_DOUBLE_DATA = 10
    T_DATA_LOCATION = 14


cdef struct Field:
    Py_ssize_t start, vstart, end  # field, value, end
    unsigned long long number, value  # value: a varint field's value
    int wire


cdef struct Cut:
    Py_ssize_t start, end, vstart, name_start, name_end
    unsigned long long data_type


cdef int read_varint(const uchar* b, Py_ssize_t stop, Py_ssize_t* pos,
                     unsigned long long* v) noexcept nogil:
    cdef unsigned long long value = 0
    cdef int shift = 0
    while pos[0] < stop and shift < 64:
        value |= <unsigned long long>(b[pos[0]] & 0x7F) << shift
        pos[0] += 1
        if b[pos[0] - 1] < 0x80:
            v[0] = value
            return 0
        shift += 7
    return -1


cdef int read_field(const uchar* b, Py_ssize_t stop, Py_ssize_t pos, Field* f) noexcept nogil:
    """The field starting at ``pos``; -1 if it is corrupt or runs past ``stop``."""
    cdef unsigned long long key, n = 0
    f.start = pos
    if read_varint(b, stop, &pos, &key) < 0:
        return -1
    f.number, f.wire = key >> 3, key & 7
    f.vstart = pos
    f.value = 0
    if f.wire == 0:
        if read_varint(b, stop, &pos, &f.value) < 0:
            return -1
        f.end = pos
    elif f.wire == 2:
        if read_varint(b, stop, &pos, &n) < 0 or n > <unsigned long long>(stop - pos):
            return -1
        f.vstart, f.end = pos, pos + <Py_ssize_t>n
    elif f.wire == 1:
        f.end = pos + 8
    elif f.wire == 5:
        f.end = pos + 4
    else:
        return -1
    return -1 if f.end > stop or f.number == 0 else 0


cdef bint strippable(unsigned long long number, unsigned long long data_type) noexcept nogil:
    if number == T_RAW_DATA:  # float, double, int64, int32, float16: numpy reads them as-is
        return data_type == 1 or data_type == 11 or data_type == 7 or data_type == 6 \
            or data_type == 10
    return (number == T_FLOAT_DATA and data_type == 1) or \
        (number == T_DOUBLE_DATA and data_type == 11)


cdef int tensor_cut(const uchar* b, Py_ssize_t s, Py_ssize_t e, Py_ssize_t inline_bytes,
                    Cut* c) noexcept nogil:
    """1 when the tensor in b[s:e] has a payload to cut (filled into c), 0 if not, -1 if
    it is corrupt."""
    cdef Field f
    cdef int candidates = 0
    cdef bint plain = True
    c.data_type = 1  # TensorProto's default
    c.name_start = c.name_end = 0
    cdef Py_ssize_t pos = s
    cdef Field cand
    cand.start = cand.vstart = cand.end = 0
    cand.number = 0
    while pos < e:
        if read_field(b, e, pos, &f) < 0:
            return -1
        pos = f.end
        if f.number == T_NAME and f.wire == 2:
            c.name_start, c.name_end = f.vstart, f.end
        elif f.number == T_DATA_TYPE and f.wire == 0:
            c.data_type = f.value
        elif f.number == T_SEGMENT or f.number == T_DATA_LOCATION:
            plain = False
        elif f.wire == 2 and (f.number == T_RAW_DATA or f.number == T_FLOAT_DATA or
                              f.number == T_DOUBLE_DATA):
            candidates += 1
            cand = f
    if not plain or candidates != 1 or cand.end - cand.vstart <= inline_bytes or \
            not strippable(cand.number, c.data_type):
        return 0
    c.start, c.end, c.vstart = cand.start, cand.end, cand.vstart
    return 1


cdef inline int varint_len(unsigned long long v) noexcept nogil:
    cdef int n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline Py_ssize_t put_varint(uchar* dst, Py_ssize_t pos,
                                  unsigned long long v) noexcept nogil:
    while v >= 0x80:
        dst[pos] = <uchar>(v & 0x7F | 0x80)
        v >>= 7
        pos += 1
    dst[pos] = <uchar>v
    return pos + 1


cdef inline Py_ssize_t put(uchar* dst, Py_ssize_t pos, const uchar* src,
                           Py_ssize_t n) noexcept nogil:
    if dst != NULL:
        memcpy(dst + pos, src, n)
    return pos + n


cdef inline Py_ssize_t put_header(uchar* dst, Py_ssize_t pos, unsigned long long number,
                                  Py_ssize_t n) noexcept nogil:
    """A length-delimited field's key and length."""
    if dst == NULL:
        return pos + varint_len(number << 3 | 2) + varint_len(n)
    pos = put_varint(dst, pos, number << 3 | 2)
    return put_varint(dst, pos, n)


cdef Py_ssize_t graph_body(const uchar* b, Py_ssize_t s, Py_ssize_t e, Py_ssize_t inline_bytes,
                           uchar* dst, Py_ssize_t pos, list payloads) except -2:
    """Writes the stripped GraphProto at dst[pos:] (only counts when dst is NULL; records the
    payloads when it writes); returns the end position."""
    cdef Field f
    cdef Cut c
    cdef int r
    cdef Py_ssize_t at = s
    while at < e:
        if read_field(b, e, at, &f) < 0:
            raise ValueError(f"corrupt protobuf in the graph at byte {at}")
        at = f.end
        r = 0
        if f.number == GRAPH_INITIALIZER and f.wire == 2 and f.end - f.vstart > inline_bytes:
            r = tensor_cut(b, f.vstart, f.end, inline_bytes, &c)
            if r < 0:
                raise ValueError(f"corrupt protobuf in an initializer at byte {f.vstart}")
        if r == 0:
            pos = put(dst, pos, b + f.start, f.end - f.start)
            continue
        pos = put_header(dst, pos, GRAPH_INITIALIZER, (f.end - f.vstart) - (c.end - c.start))
        pos = put(dst, pos, b + f.vstart, c.start - f.vstart)
        pos = put(dst, pos, b + c.end, f.end - c.end)
        if dst != NULL:
            payloads.append((b[c.name_start:c.name_end], c.data_type, c.vstart,
                             c.end - c.vstart))
    return pos


def split_payloads(const uchar[::1] buf, Py_ssize_t inline_bytes):
    """(the ModelProto bytes without the cut payloads, [(tensor name bytes, data type,
    payload offset, payload bytes)]). ValueError if the bytes are not well-formed."""
    cdef const uchar* b = &buf[0] if buf.shape[0] else NULL
    cdef Py_ssize_t n = buf.shape[0], at, pos, size = 0
    cdef Field f
    cdef list payloads = []
    cdef bytearray out
    cdef uchar* dst = NULL
    for write in (False, True):
        if write:
            out = bytearray(size)
            dst = <uchar*>out if size else NULL
            if dst == NULL:
                break
        at = pos = 0
        while at < n:
            if read_field(b, n, at, &f) < 0:
                raise ValueError(f"not a protobuf message: corrupt at byte {at}")
            at = f.end
            if f.number == MODEL_GRAPH and f.wire == 2:
                body = graph_body(b, f.vstart, f.end, inline_bytes, NULL, 0, None)
                pos = put_header(dst, pos, MODEL_GRAPH, body)
                pos = graph_body(b, f.vstart, f.end, inline_bytes, dst, pos, payloads)
            else:
                pos = put(dst, pos, b + f.start, f.end - f.start)
        size = pos
    return bytes(out), payloads
