//! Tells the compiler which Python C API the build targets (`Py_3_11`, `Py_LIMITED_API`), so the
//! buffer protocol is compiled only where the stable ABI has it.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
