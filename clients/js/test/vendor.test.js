// The MessagePack build served to browsers (vendor/, embedded in whiteboard-server) is the
// one of the installed @msgpack/msgpack, byte for byte; and its ES module face exports what
// the client imports.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import vm from "node:vm";

import { ROOT } from "./support.js";

const vendor = path.join(ROOT, "clients", "js", "vendor");

test("vendor/msgpack.min.js is the installed package's UMD build", () => {
  const require = createRequire(import.meta.url);
  const installed = path.join(path.dirname(require.resolve("@msgpack/msgpack/package.json")), "dist.umd", "msgpack.min.js");
  assert.ok(
    readFileSync(path.join(vendor, "msgpack.min.js")).equals(readFileSync(installed)),
    "vendor/msgpack.min.js differs from node_modules/@msgpack/msgpack/dist.umd/msgpack.min.js: copy it again",
  );
  const version = JSON.parse(readFileSync(require.resolve("@msgpack/msgpack/package.json"), "utf8")).version;
  assert.match(readFileSync(path.join(vendor, "msgpack.js"), "utf8"), new RegExp(`@msgpack/msgpack ${version.replaceAll(".", "\\.")}`));
});

test("the vendored build, loaded as a classic script, encodes like the package", async () => {
  const sandbox = { TextEncoder, TextDecoder };
  vm.createContext(sandbox);
  vm.runInContext(readFileSync(path.join(vendor, "msgpack.min.js"), "utf8"), sandbox);
  const MessagePack = /** @type {any} */ (sandbox).MessagePack;
  assert.equal(typeof MessagePack?.encode, "function", "the script did not define MessagePack");
  const { encode } = await import("@msgpack/msgpack");
  const message = { action: "chat", text: "Hello" };
  assert.deepEqual([...MessagePack.encode(message)], [...encode(message)]);
  // The bytes of Python's msgpack.packb({"action": "chat", "text": "Hello"}).
  assert.equal(
    Buffer.from(encode(message)).toString("hex"),
    "82a6616374696f6ea463686174a474657874a548656c6c6f",
  );
});
