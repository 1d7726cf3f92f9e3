// The ES module face of the vendored MessagePack build, for pages without a bundler.
//
// msgpack.min.js (the UMD build of @msgpack/msgpack 3.1.3, ISC licence: LICENSE-msgpack) is
// loaded first with a classic <script> tag and defines `globalThis.MessagePack`; an import map
// then points the specifier "@msgpack/msgpack" here:
//
//   <script src="/msgpack.min.js"></script>
//   <script type="importmap">{"imports": {"@msgpack/msgpack": "/msgpack.js"}}</script>
const MessagePack = /** @type {any} */ (globalThis).MessagePack;
if (!MessagePack) {
  throw new Error("load msgpack.min.js with a <script> tag before importing @msgpack/msgpack");
}
export const { encode, decode, Encoder, Decoder, DecodeError, ExtensionCodec, ExtData } = MessagePack;
