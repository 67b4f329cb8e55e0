// Prints the functions that took the most self time in a `.cpuprofile`, demangled enough to read.
//
// usage: node summarize.mjs PROFILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';

const [path, top = '30'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(path, 'utf8'));
const selfTime = new Map();
const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const name = byNode.get(id)?.callFrame.functionName || '(anonymous)';
  selfTime.set(name, (selfTime.get(name) ?? 0) + dt);
});

// Legacy Rust mangling: _ZN<len><ident>...17h<hash>E; keep the path, drop the hash.
function readable(name) {
  const m = /^_ZN(.*)17h[0-9a-f]{16}E$/.exec(name);
  if (!m) return name;
  const parts = [];
  for (let rest = m[1]; rest.length > 0; ) {
    const len = /^\d+/.exec(rest);
    if (!len) break;
    const n = Number(len[0]);
    parts.push(rest.slice(len[0].length, len[0].length + n));
    rest = rest.slice(len[0].length + n);
  }
  return parts
    .map((p) => p.replace(/^_\$/, '$'))
    .join('::')
    .replace(/\$LT\$/g, '<').replace(/\$GT\$/g, '>').replace(/\$u20\$/g, ' ')
    .replace(/\$u7b\$/g, '{').replace(/\$u7d\$/g, '}').replace(/\.\./g, '::');
}

[...selfTime.entries()]
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(top))
  .forEach(([name, t]) => console.log(`${((100 * t) / total).toFixed(1).padStart(5)} %  ${readable(name)}`));
