// The WASM OpenJPEG decoder's Emscripten factory (the package ships no types).
declare module '@cornerstonejs/codec-openjpeg/decodewasmjs' {
  const factory: (opts?: Record<string, unknown>) => Promise<unknown>;
  export default factory;
}
