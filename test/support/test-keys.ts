/** A plain key for tests, valid with prefix `qg`, and its hash. */
export const TEST_KEY = 'qg_gyHv9AT3WonldYsJ8ffUI9_0p4rsE';
export const TEST_KEY_HASH = '00975063a56d962832bdba45488145875b2236883a4c0009d85c03f9704d0b00';
/** A second, well-formed key that no config lists. */
export const UNKNOWN_KEY = 'qg_EZRq9ocoO352BsoFcsGLvS_0V3G9A';
