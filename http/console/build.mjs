// Builds the console into dist/ (embedded by console.go): src/main.tsx
// bundled and minified by esbuild into dist/app.js, src/app.css into
// dist/app.css, src/index.html and src/favicon.svg copied. After a type check
// (tsc --noEmit). No source maps, no file hashes: the Go handler serves the
// files with ETags. Run: npm ci && npm run build.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], { stdio: 'inherit' });

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist');
await build({
  entryPoints: { app: 'src/main.tsx', 'app-css': 'src/app.css' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: 'dist',
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
  // No eval, no inline anything: the CSP allows only these files.
  charset: 'utf8',
});
// esbuild names the CSS entry app-css.css; the page links app.css.
copyFileSync('dist/app-css.css', 'dist/app.css');
rmSync('dist/app-css.css');
rmSync('dist/app-css.js', { force: true });
copyFileSync('src/index.html', 'dist/index.html');
copyFileSync('src/favicon.svg', 'dist/favicon.svg');

let total = 0;
for (const f of ['index.html', 'app.js', 'app.css', 'favicon.svg']) {
  const b = readFileSync('dist/' + f);
  const gz = gzipSync(b, { level: 9 }).length;
  total += gz;
  console.log(`dist/${f}: ${statSync('dist/' + f).size} bytes, ${gz} gzipped`);
}
console.log(`total gzipped: ${total} bytes (budget 300 KB)`);
if (total > 300 * 1024) {
  console.error('over the 300 KB budget');
  process.exit(1);
}
