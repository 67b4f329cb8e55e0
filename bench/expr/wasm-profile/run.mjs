// Runs a wasm32-wasip1 build of `request_paths` under node's WASI, for `node --cpu-prof`.
// V8 names the module's functions from its name section, so the profile shows where the
// filters' own work goes when it runs as WebAssembly (`make profile-request-paths`).
//
// usage: node --cpu-prof run.mjs REQUEST_PATHS.wasm REPO_ROOT
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [wasmPath, root] = process.argv.slice(2);
// request_paths reads the seed configurations by absolute path under the repository.
const wasi = new WASI({ version: 'preview1', args: ['request_paths'], env: {}, preopens: { [root]: root } });
const module = await WebAssembly.compile(await readFile(wasmPath));
const imports = wasi.getImportObject();
// request_paths links only the engine, which makes no proxy-wasm host call (they are in
// hosts/proxy-wasm) and answers from memory: any `env` import a build has only has to exist.
imports.env = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.module === 'env' && imp.kind === 'function') imports.env[imp.name] = () => 1;
}
wasi.start(await WebAssembly.instantiate(module, imports));
