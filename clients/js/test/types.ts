// Compile-time tests of the client's declarations with the whiteboard protocol generated from
// Rust: `tsc --noEmit -p .` fails if a line marked `@ts-expect-error` type-checks, so each of
// them proves that a wrong message is rejected. Never run, only checked.

import { connect, Client, RequestError, type Protocol } from "repod-client";
import type { Drawn, Welcome, WhiteboardProtocol } from "../../../repod-examples/web/whiteboard-protocol";

declare const client: Client<WhiteboardProtocol>;

export async function sending(): Promise<void> {
  client.send("stroke", { points: [[1, 2], [3, 4]] });
  client.send("join", { name: "ada" });

  // @ts-expect-error: a point is [x, y]
  client.send("stroke", { points: [[1, 2, 3]] });
  // @ts-expect-error: coordinates are numbers
  client.send("stroke", { points: [["1", "2"]] });
  // @ts-expect-error: no such action
  client.send("strokes", { points: [] });
  // @ts-expect-error: `name` is a string
  client.send("join", { name: 42 });
  // @ts-expect-error: `points` is required
  client.send("stroke", {});
  // @ts-expect-error: the fields are required
  client.send("stroke");
  // @ts-expect-error: "drawn" is sent by the server, not by clients
  client.send("drawn", { id: 1, color: "#000", points: [] });
}

export async function requesting(): Promise<Welcome> {
  const welcome = await client.request("join", { name: "ada" }, { timeout: 5000 });
  const color: string = welcome.you.color;
  const first: Drawn | undefined = welcome.strokes[0];
  void color;
  void first;
  // @ts-expect-error: a stroke is not a request
  await client.request("stroke", { points: [] });
  // @ts-expect-error: the reply is a Welcome, not a string
  const wrong: string = await client.request("join", { name: "ada" });
  void wrong;
  try {
    return await client.request("join", { name: "" });
  } catch (error) {
    if (error instanceof RequestError && error.kind === "remote") {
      throw new Error(`the server refused: ${error.message}`);
    }
    throw error;
  }
}

export function receiving(): void {
  client.on("drawn", (drawn) => {
    const action: "drawn" = drawn.action;
    const points: [number, number][] = drawn.points;
    void action;
    void points;
  });
  client.on("joined", ({ player }) => void player.name);
  client.on("disconnected", ({ reason }) => void reason.length);
  client.on("error", ({ message }) => void message.length);
  client.on("connected", () => undefined);
  // @ts-expect-error: `drawn` has no `name`
  client.on("drawn", (drawn) => drawn.name);
  // @ts-expect-error: the server never sends "stroke"
  client.on("stroke", () => undefined);
  client.onMessage((message) => void message.action.length);
}

export function untyped(): void {
  // Without a protocol every action and any fields are accepted.
  const any = connect("ws://127.0.0.1:5072");
  any.send("anything", { at: "all" });
  any.on("whatever", (message) => void message.action);
}

// A protocol written by hand rather than generated, with a field-less message.
type Chat = {
  client: { say: { text: string }; ping: null; list: { mode: string } };
  server: { said: { from: string; text: string } };
  replies: { list: { rooms: string[] } };
};

export async function handWritten(): Promise<string[]> {
  const chat = connect<Chat>("ws://127.0.0.1:5072", { requestTimeout: 1000 });
  chat.send("ping");
  chat.send("say", { text: "hi" });
  // @ts-expect-error: "say" needs its text
  chat.send("say");
  const satisfies: Protocol = {} as Chat;
  void satisfies;
  return (await chat.request("list", { mode: "ffa" })).rooms;
}
