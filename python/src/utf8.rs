//! The UTF-8 text of a Python `str`, borrowed instead of copied.
//!
//! The wheel targets the stable ABI of CPython 3.9, whose limited API has no call that returns
//! a `str`'s UTF-8 form in place, so reading a `str` through it copies the text into a new
//! `bytes` object. `PyUnicode_AsUTF8AndSize` returns the UTF-8 form that CPython caches inside
//! the `str` (for an ASCII string, its own buffer). Every CPython 3 release exports it, and it
//! joined the limited API in 3.10. An event has a dozen strings, so the copies were a large
//! part of the caller's cost of `track`.

use std::os::raw::c_char;

use pyo3::ffi::{PyObject, Py_ssize_t};
use pyo3::prelude::*;
use pyo3::types::PyString;

unsafe extern "C" {
    fn PyUnicode_AsUTF8AndSize(unicode: *mut PyObject, size: *mut Py_ssize_t) -> *const c_char;
}

/// Returns the text of `string`, or `None` when it has no UTF-8 form (it holds a lone
/// surrogate); the Python error that CPython raised then is cleared.
pub fn borrow<'a>(string: &'a Bound<'_, PyString>) -> Option<&'a str> {
    let mut size: Py_ssize_t = 0;
    // SAFETY: `string` is a live `str` and the calling thread is attached to the interpreter,
    // which a `Bound` guarantees.
    let data = unsafe { PyUnicode_AsUTF8AndSize(string.as_ptr(), &mut size) };
    if data.is_null() {
        drop(PyErr::take(string.py()));
        return None;
    }
    let length = usize::try_from(size).ok()?;
    // SAFETY: CPython returns `size` bytes of valid UTF-8 owned by the `str`, which lives at
    // least as long as the borrow of `string`.
    let text = unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(data.cast::<u8>(), length)) };
    Some(text)
}
