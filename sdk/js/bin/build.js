#!/usr/bin/env node
// Builds a JavaScript or TypeScript plugin project into a component:
// `switchyard-js-build [DIR]`.
//
// Reads `DIR/package.json` (`name`, and `switchyard.entry`, default `src/plugin.js`), bundles
// the entry with this SDK into one ES module (rolldown; TypeScript is stripped, the world's
// `switchyard:plugin/…` imports stay imports), then runs componentize-js against the world
// `plugin` with every optional WASI feature disabled, so the component imports only what the
// host links. The component goes to `DIR/build/<name>.wasm`, whose absolute path is the last
// line printed on stdout (what `switchyard plugin build` reads).

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { componentize } from "@bytecodealliance/componentize-js";
import { rolldown } from "rolldown";

const SDK = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WORLD = "plugin";
// Everything componentize-js can leave out: no stdio, clocks, random or HTTP imports.
const DISABLED_FEATURES = ["stdio", "random", "clocks", "http", "fetch-event"];

async function build(directory) {
  const project = resolve(directory);
  const manifestPath = join(project, "package.json");
  let manifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, "utf8"));
  } catch (error) {
    throw new Error(`cannot read \`${manifestPath}\`: ${error.message}`);
  }
  if (typeof manifest.name !== "string" || manifest.name === "") {
    throw new Error(`\`${manifestPath}\` has no \`name\``);
  }
  const entry = resolve(project, manifest.switchyard?.entry ?? "src/plugin.js");
  const name = manifest.name.replace(/^@[^/]+\//, "").replaceAll("-", "_");
  const outputDirectory = join(project, "build");
  await mkdir(outputDirectory, { recursive: true });

  const bundlePath = join(outputDirectory, `${name}.bundle.js`);
  const bundle = await rolldown({
    input: entry,
    cwd: project,
    platform: "neutral",
    external: [/^switchyard:plugin\//],
    resolve: { alias: { "@switchyard/plugin": join(SDK, "src", "index.js") } },
    logLevel: "warn",
  });
  await bundle.write({ file: bundlePath, format: "esm", codeSplitting: false });
  await bundle.close();

  const { component } = await componentize({
    sourcePath: bundlePath,
    witPath: join(SDK, "wit"),
    worldName: WORLD,
    disableFeatures: DISABLED_FEATURES,
  });
  const output = join(outputDirectory, `${name}.wasm`);
  await writeFile(output, component);
  return output;
}

const directory = process.argv[2] ?? ".";
if (directory === "-h" || directory === "--help") {
  console.log("usage: switchyard-js-build [DIR]   (DIR defaults to the current directory)");
  process.exit(0);
}
// Progress from the tools goes to stderr; stdout carries the component's path alone.
const log = console.log;
console.log = (...args) => console.error(...args);
try {
  const output = await build(directory);
  log(output);
} catch (error) {
  console.error(`error: ${error.message}`);
  process.exit(1);
}
