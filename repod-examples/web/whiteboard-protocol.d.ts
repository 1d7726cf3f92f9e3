// The whiteboard protocol's message types, generated from the Rust types of
// repod-examples/src/whiteboard.rs by its test `typescript_declarations_are_current`.
// Do not edit: change the Rust types, then regenerate with
//     REPOD_UPDATE_TS=1 cargo test -p repod-examples --lib whiteboard

/**
 * Client → server, a request: put me on the board. Answered with a [`Welcome`], or an error
 * if this connection has joined already.
 */
export type Join = {
/**
 * The name shown to the others; blank for a generated one; cut to [`MAX_NAME`]
 * characters.
 */
name: string, };

/**
 * A player on the board.
 */
export type Player = {
/**
 * The player's id (its connection's id on the server).
 */
id: number,
/**
 * The player's name.
 */
name: string,
/**
 * The player's colour, as CSS `#rrggbb`.
 */
color: string, };

/**
 * The reply to [`Join`].
 */
export type Welcome = {
/**
 * You, as the others see you.
 */
you: Player,
/**
 * Everyone on the board, you included.
 */
players: Array<Player>,
/**
 * The most recent strokes, oldest first.
 */
strokes: Array<Drawn>, };

/**
 * Client → server: a piece of a line, drawn in the sender's colour. Points are `[x, y]`
 * within the board; a stroke continuing the previous one starts with its last point.
 */
export type Stroke = {
/**
 * 1 to [`MAX_POINTS`] points.
 */
points: Array<[number, number]>, };

/**
 * Server → the other players: someone drew a [`Stroke`].
 */
export type Drawn = {
/**
 * Who drew it.
 */
id: number,
/**
 * In which colour.
 */
color: string,
/**
 * The points, as sent.
 */
points: Array<[number, number]>, };

/**
 * Server → the players already there: someone joined.
 */
export type Joined = {
/**
 * The newcomer.
 */
player: Player, };

/**
 * Server → the players still there: someone left.
 */
export type Left = {
/**
 * The id of the player who left.
 */
id: number, };

/** The whiteboard for the repod JavaScript client: `connect<WhiteboardProtocol>(url)`. */
export type WhiteboardProtocol = {
  /** What a player sends. */
  client: {
    join: Join;
    stroke: Stroke;
  };
  /** What the server sends. */
  server: {
    drawn: Drawn;
    joined: Joined;
    left: Left;
  };
  /** The requests, and what each is answered with. */
  replies: {
    join: Welcome;
  };
};
