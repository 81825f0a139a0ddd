#!/usr/bin/env node
// Size check of the code (issue 16): files and functions small enough to read in one sitting.
//
//   node scripts/check-sizes.mjs [ROOT]     (ROOT: the package root, default this checkout)
//
// Rules:
//   - every C/C++ file under native/ has at most 800 lines (generated tables excepted: a file
//     whose first line says "generated" is skipped);
//   - every file under native/addon/ has at most 400 lines;
//   - every function in native/runtime/ (C++), lib/cli/ and lib/serve/ (TypeScript) spans at
//     most 120 lines, counted from its first line to its closing brace, nested functions
//     included (a 150-line function made of two nested 75-line lambdas is still 150 lines).
// C++ functions are found by brace matching after comments and literals are blanked: a brace
// opened at namespace scope that is not a namespace, class, struct, union, enum or an
// initialiser list starts a function. TypeScript functions come from the compiler's syntax
// tree (declarations, methods, constructors, accessors, function expressions, arrows).
// Exit 0 with a one-line summary, or 1 listing path, line, size and the rule broken.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const LIMITS = {
  nativeFileLines: 800,
  addonFileLines: 400,
  functionLines: 120,
};
/** Folders (relative to the root) whose functions are held to LIMITS.functionLines. */
export const FUNCTION_DIRS = ['native/runtime', 'lib/cli', 'lib/serve'];

const CXX = /\.(h|hh|hpp|cc|cpp|cxx|c|inc)$/;
const TS = /\.(ts|mts|cts)$/;

function listFiles(dir, pattern, out = []) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) listFiles(full, pattern, out);
    else if (e.isFile() && pattern.test(e.name) && !e.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

function lineCount(text) {
  if (text.length === 0) return 0;
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

/** C++ text with comments, string and character literals replaced by spaces (newlines kept). */
export function blankCxx(text) {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    const d = text[i + 1];
    if (c === '/' && d === '/') {
      while (i < n && text[i] !== '\n') {
        out += ' ';
        i++;
      }
    } else if (c === '/' && d === '*') {
      out += '  ';
      i += 2;
      while (i < n && !(text[i] === '*' && text[i + 1] === '/')) {
        out += text[i] === '\n' ? '\n' : ' ';
        i++;
      }
      out += '  ';
      i += 2;
    } else if (c === 'R' && d === '"') {
      // Raw string R"delim( ... )delim"
      const open = text.indexOf('(', i + 2);
      const delim = text.slice(i + 2, open);
      const close = text.indexOf(`)${delim}"`, open);
      const end = close < 0 ? n : close + delim.length + 2;
      for (; i < end; i++) out += text[i] === '\n' ? '\n' : ' ';
    } else if (c === '"' || (c === "'" && !/[0-9a-fA-F]/.test(text[i - 1] ?? ''))) {
      // A quote after a hex digit is a digit separator (1'000), not a character literal.
      out += ' ';
      i++;
      while (i < n && text[i] !== c && text[i] !== '\n') {
        if (text[i] === '\\') {
          out += ' ';
          i++;
        }
        out += ' ';
        i++;
      }
      out += ' ';
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * Function bodies of a C++ file: [{ name, line, lines }], found by brace matching at
 * namespace scope. `line` is the 1-based line of the signature's first line.
 */
export function cxxFunctions(text) {
  // Preprocessor lines (with their continuations) are blanked too: `#if defined(X)` is no
  // signature.
  const src = blankCxx(text).replace(/^[ \t]*#(?:[^\n]*\\\n)*[^\n]*/gm, (m) =>
    m.replace(/[^\n]/g, ' '),
  );
  const lines = src.split('\n');
  const lineStart = [0];
  for (let i = 0; i < src.length; i++) if (src[i] === '\n') lineStart.push(i + 1);
  const lineOf = (pos) => {
    let lo = 0;
    let hi = lineStart.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStart[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const found = [];
  // Stack of open braces: 'scope' (namespace, extern "C") or 'other'.
  const stack = [];
  let stmtStart = 0; // where the current declaration at scope level began
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    const atScope = stack.every((s) => s === 'scope');
    if (c === ';' && atScope) stmtStart = i + 1;
    else if (c === '}' && atScope) stmtStart = i + 1;
    else if (c === '{') {
      if (!atScope) {
        stack.push('other');
        continue;
      }
      const head = src.slice(stmtStart, i).trim();
      const headFlat = head.replace(/\s+/g, ' ');
      if (
        /^(namespace\b|extern\b\s*$|extern "C"\s*$)/.test(headFlat) ||
        /^extern\s*$/.test(headFlat)
      ) {
        stack.push('scope');
        stmtStart = i + 1;
        continue;
      }
      // Find the matching close brace.
      let depth = 1;
      let j = i + 1;
      for (; j < src.length && depth > 0; j++) {
        if (src[j] === '{') depth++;
        else if (src[j] === '}') depth--;
      }
      const isType =
        /(^|\s)(class|struct|union|enum)\s[^()]*$|(^|\s)(class|struct|union|enum)\s*$/.test(
          headFlat.replace(/template\s*<[^>]*>/g, ''),
        );
      const isInit = /=\s*$/.test(headFlat) || !headFlat.includes('(');
      if (!isType && !isInit) {
        // The signature starts at the first non-blank line of the head.
        const startPos =
          stmtStart + (src.slice(stmtStart, i).length - src.slice(stmtStart, i).trimStart().length);
        const first = lineOf(startPos);
        const last = lineOf(j - 1);
        const nameMatch = /([A-Za-z_~][A-Za-z_0-9:~<>]*)\s*\(/.exec(
          headFlat.replace(/template\s*<[^>]*>/g, ''),
        );
        found.push({
          name: nameMatch ? nameMatch[1] : headFlat.slice(0, 40),
          line: first,
          lines: last - first + 1,
        });
      }
      // Skip the body (types' member functions count inside their class: a class body is not
      // searched, which is fine for this project, whose runtime defines members out of line).
      i = j - 1;
      stmtStart = j;
    } else if (c === '}') {
      stack.pop();
      stmtStart = i + 1;
    }
  }
  void lines;
  return found;
}

/** Functions of a TypeScript file: [{ name, line, lines }]. */
export function tsFunctions(file, text) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node) ||
      ts.isFunctionExpression(node) ||
      ts.isArrowFunction(node)
    ) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      let name = node.name && ts.isIdentifier(node.name) ? node.name.text : '';
      if (!name && ts.isConstructorDeclaration(node)) name = 'constructor';
      if (
        !name &&
        node.parent &&
        ts.isVariableDeclaration(node.parent) &&
        ts.isIdentifier(node.parent.name)
      ) {
        name = node.parent.name.text;
      }
      found.push({ name: name || '(anonymous)', line: first, lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

export function checkSizes(root) {
  const problems = [];
  let files = 0;
  let functions = 0;
  const rel = (f) => path.relative(root, f).split(path.sep).join('/');
  for (const f of listFiles(path.join(root, 'native'), CXX)) {
    files++;
    const text = readFileSync(f, 'utf8');
    if (/generated/i.test(text.split('\n', 1)[0])) continue;
    const n = lineCount(text);
    const r = rel(f);
    const limit = r.startsWith('native/addon/') ? LIMITS.addonFileLines : LIMITS.nativeFileLines;
    if (n > limit) problems.push(`${r}: ${n} lines, over the ${limit}-line limit for this folder`);
  }
  for (const dir of FUNCTION_DIRS) {
    const abs = path.join(root, dir);
    const isNative = dir.startsWith('native/');
    for (const f of listFiles(abs, isNative ? CXX : TS)) {
      const text = readFileSync(f, 'utf8');
      const fns = isNative ? cxxFunctions(text) : tsFunctions(f, text);
      functions += fns.length;
      for (const fn of fns) {
        if (fn.lines > LIMITS.functionLines) {
          problems.push(
            `${rel(f)}:${fn.line}: function ${fn.name} spans ${fn.lines} lines, over ${LIMITS.functionLines}`,
          );
        }
      }
    }
  }
  return { problems, files, functions };
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const root = path.resolve(
    process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'),
  );
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
    console.error(`check-sizes: ${root} is not a directory`);
    process.exit(2);
  }
  const { problems, files, functions } = checkSizes(root);
  if (problems.length) {
    console.error(`check-sizes: ${problems.length} problem(s):`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  console.log(
    `check-sizes: ${files} native files within ${LIMITS.nativeFileLines} lines (addon ${LIMITS.addonFileLines}); ` +
      `${functions} functions in ${FUNCTION_DIRS.join(', ')} within ${LIMITS.functionLines} lines`,
  );
}
