#!/usr/bin/env node
// Writes TypeScript declarations for the `switchyard:plugin` WIT package on stdout: one
// `declare module` per interface, named as componentize-js names the imports
// (`switchyard:plugin/host@0.1.0`), with the WIT's `///` comments as JSDoc.
//
// `npm run types` regenerates `types/world.d.ts`; a test regenerates it and compares, so the
// declarations cannot drift from the WIT. Handles the subset of WIT the package uses:
// records, variants, enums, functions, and the types string, bool, u8–u64, s8–s64, list,
// option, tuple and result.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const WIT = join(dirname(fileURLToPath(import.meta.url)), "..", "wit", "switchyard.wit");

const camel = (name) => name.replace(/^%/, "").replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
const pascal = (name) => camel(name).replace(/^./, (c) => c.toUpperCase());

/** Splits WIT text into tokens, keeping `///` comments as single tokens. */
function tokenize(text) {
  const tokens = [];
  const pattern = /\/\/\/[^\n]*|\/\/[^\n]*|[%A-Za-z_][\w.%-]*(?:@[0-9.]+)?|->|[{}()<>,:;=]|\S/g;
  for (const match of text.matchAll(pattern)) {
    const token = match[0];
    if (token.startsWith("//") && !token.startsWith("///")) continue;
    tokens.push(token);
  }
  return tokens;
}

class Parser {
  constructor(tokens) {
    this.tokens = tokens;
    this.at = 0;
  }
  peek() {
    return this.tokens[this.at];
  }
  next() {
    return this.tokens[this.at++];
  }
  expect(token) {
    const found = this.next();
    if (found !== token) throw new Error(`expected \`${token}\`, found \`${found}\``);
  }
  docs() {
    const lines = [];
    while (this.peek()?.startsWith("///")) lines.push(this.next().slice(3).replace(/^ /, ""));
    return lines;
  }
  type() {
    const name = this.next();
    if (!["list", "option", "tuple", "result"].includes(name)) return { name };
    this.expect("<");
    const args = [this.type()];
    while (this.peek() === ",") {
      this.next();
      args.push(this.type());
    }
    this.expect(">");
    return { name, args };
  }
}

function tsType(type) {
  switch (type.name) {
    case "string":
      return "string";
    case "bool":
      return "boolean";
    case "u8": case "u16": case "u32": case "s8": case "s16": case "s32": case "f32": case "f64":
      return "number";
    case "u64": case "s64":
      return "bigint";
    case "list":
      return type.args[0].name === "u8" ? "Uint8Array" : `Array<${tsType(type.args[0])}>`;
    case "option":
      return `${tsType(type.args[0])} | undefined`;
    case "tuple":
      return `[${type.args.map(tsType).join(", ")}]`;
    case "result":
      return tsType(type.args[0]);
    default:
      return pascal(type.name);
  }
}

function jsdoc(lines, indent, extra = []) {
  const all = [...lines, ...extra];
  if (all.length === 0) return [];
  return [`${indent}/**`, ...all.map((line) => `${indent} * ${line}`.trimEnd()), `${indent} */`];
}

/** Parses one interface body (after `{`) into declaration lines. */
function interfaceBody(parser, out) {
  for (;;) {
    const docs = parser.docs();
    const token = parser.next();
    if (token === "}") return;
    if (token === "record") {
      const name = parser.next();
      parser.expect("{");
      out.push(...jsdoc(docs, "  "), `  export interface ${pascal(name)} {`);
      for (;;) {
        const fieldDocs = parser.docs();
        if (parser.peek() === "}") break;
        const field = parser.next();
        parser.expect(":");
        const type = parser.type();
        if (parser.peek() === ",") parser.next();
        out.push(...jsdoc(fieldDocs, "    "), `    ${camel(field)}: ${tsType(type)};`);
      }
      parser.expect("}");
      out.push("  }");
    } else if (token === "variant") {
      const name = parser.next();
      parser.expect("{");
      const cases = [];
      for (;;) {
        const caseDocs = parser.docs();
        if (parser.peek() === "}") break;
        const tag = parser.next();
        let payload;
        if (parser.peek() === "(") {
          parser.next();
          payload = parser.type();
          parser.expect(")");
        }
        if (parser.peek() === ",") parser.next();
        cases.push({ tag, payload, docs: caseDocs });
      }
      parser.expect("}");
      out.push(...jsdoc(docs, "  "), `  export type ${pascal(name)} =`);
      cases.forEach(({ tag, payload, docs: caseDocs }, index) => {
        const end = index === cases.length - 1 ? ";" : "";
        const value = payload ? `; val: ${tsType(payload)}` : "";
        out.push(...jsdoc(caseDocs, "    "), `    | { tag: "${tag.replace(/^%/, "")}"${value} }${end}`);
      });
    } else if (token === "enum") {
      const name = parser.next();
      parser.expect("{");
      const names = [];
      while (parser.peek() !== "}") {
        parser.docs();
        names.push(`"${parser.next().replace(/^%/, "")}"`);
        if (parser.peek() === ",") parser.next();
      }
      parser.expect("}");
      out.push(...jsdoc(docs, "  "), `  export type ${pascal(name)} = ${names.join(" | ")};`);
    } else if (token === "use") {
      const path = parser.next();
      parser.expect("{");
      const names = [];
      while (parser.peek() !== "}") {
        names.push(pascal(parser.next()));
        if (parser.peek() === ",") parser.next();
      }
      parser.expect("}");
      parser.expect(";");
      out.push(`  import type { ${names.join(", ")} } from "${path}";`);
    } else {
      // A function: `name: func(params) -> result;`
      parser.expect(":");
      parser.expect("func");
      parser.expect("(");
      const params = [];
      while (parser.peek() !== ")") {
        const param = parser.next();
        parser.expect(":");
        params.push(`${camel(param)}: ${tsType(parser.type())}`);
        if (parser.peek() === ",") parser.next();
      }
      parser.expect(")");
      let result;
      if (parser.peek() === "->") {
        parser.next();
        result = parser.type();
      }
      parser.expect(";");
      const throws =
        result?.name === "result"
          ? [`@throws an Error whose \`payload\` is the \`${tsType(result.args[1])}\``]
          : [];
      const returns = result ? tsType(result) : "void";
      out.push(
        ...jsdoc(docs, "  ", throws),
        `  export function ${camel(token)}(${params.join(", ")}): ${returns};`,
      );
    }
  }
}

export function declarations(text) {
  const parser = new Parser(tokenize(text));
  let pkg;
  const out = [
    "// Generated from sdk/wit/switchyard.wit by scripts/wit-types.js (`npm run types`).",
    "// Do not edit: a test regenerates this file and compares.",
  ];
  while (parser.peek() !== undefined) {
    const docs = parser.docs();
    const token = parser.next();
    if (token === undefined) break;
    if (token === "package") {
      pkg = "";
      while (parser.peek() !== ";") pkg += parser.next();
      parser.next();
    } else if (token === "interface") {
      const name = parser.next();
      parser.expect("{");
      const [namespace, version] = pkg.split("@");
      out.push("", ...jsdoc(docs, ""), `declare module "${namespace}/${name}@${version}" {`);
      interfaceBody(parser, out);
      out.push("}");
    } else if (token === "world") {
      // The world's one export is what a plugin's entry module exports; its types are above.
      parser.next();
      parser.expect("{");
      let depth = 1;
      while (depth > 0) {
        const inner = parser.next();
        if (inner === "{") depth++;
        if (inner === "}") depth--;
      }
    } else {
      throw new Error(`unexpected \`${token}\` at the top level`);
    }
  }
  return `${out.join("\n")}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(declarations(readFileSync(WIT, "utf8")));
}
