//! The whiteboard protocol, shared by `whiteboard-server`, `whiteboard-bots` and, as
//! TypeScript declarations generated from these types (`repod-examples/web/whiteboard-protocol.d.ts`),
//! the browser page.
//!
//! A player asks to [`Join`] (a request, answered with a [`Welcome`]: its id, its colour, who
//! is there and the board so far) and is then in the board's group: it receives [`Drawn`] for
//! every stroke the others draw, and [`Joined`]/[`Left`] as players come and go. Drawing is
//! sending [`Stroke`]s: short polylines, sent while the pen moves. The server speaks
//! MessagePack, so browsers, Rust bots and Python programs share one board.

use serde::{Deserialize, Serialize};

/// The board's width, in points; x runs from 0 to `WIDTH`.
pub const WIDTH: u16 = 960;
/// The board's height, in points; y runs from 0 to `HEIGHT`.
pub const HEIGHT: u16 = 600;
/// The most points one [`Stroke`] may carry.
pub const MAX_POINTS: usize = 256;
/// The longest player name, in characters.
pub const MAX_NAME: usize = 24;
/// The name of the group (room) every joined player is in.
pub const BOARD: &str = "board";
/// The board keeps at most this many strokes for players who join later…
pub const HISTORY_STROKES: usize = 1000;
/// …and at most this many points in all, so a [`Welcome`] stays well below the maximum frame
/// length (1 MiB).
pub const HISTORY_POINTS: usize = 60_000;
/// The players' colours, given in turn.
pub const PALETTE: [&str; 10] = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
    "#469990", "#000075",
];

/// Client → server, a request: put me on the board. Answered with a [`Welcome`], or an error
/// if this connection has joined already.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[action("join")]
#[reply(Welcome)]
pub struct Join {
    /// The name shown to the others; blank for a generated one; cut to [`MAX_NAME`]
    /// characters.
    pub name: String,
}

/// A player on the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Player {
    /// The player's id (its connection's id on the server).
    pub id: u64,
    /// The player's name.
    pub name: String,
    /// The player's colour, as CSS `#rrggbb`.
    pub color: String,
}

/// The reply to [`Join`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Welcome {
    /// You, as the others see you.
    pub you: Player,
    /// Everyone on the board, you included.
    pub players: Vec<Player>,
    /// The most recent strokes, oldest first.
    pub strokes: Vec<Drawn>,
}

/// Client → server: a piece of a line, drawn in the sender's colour. Points are `[x, y]`
/// within the board; a stroke continuing the previous one starts with its last point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[action("stroke")]
pub struct Stroke {
    /// 1 to [`MAX_POINTS`] points.
    pub points: Vec<(u16, u16)>,
}

/// Server → the other players: someone drew a [`Stroke`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[action("drawn")]
pub struct Drawn {
    /// Who drew it.
    pub id: u64,
    /// In which colour.
    pub color: String,
    /// The points, as sent.
    pub points: Vec<(u16, u16)>,
}

/// Server → the players already there: someone joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[action("joined")]
pub struct Joined {
    /// The newcomer.
    pub player: Player,
}

/// Server → the players still there: someone left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[action("left")]
pub struct Left {
    /// The id of the player who left.
    pub id: u64,
}

/// The colour of the player with this id.
pub fn color_of(id: u64) -> &'static str {
    PALETTE[(id % PALETTE.len() as u64) as usize]
}

/// The name a player gets: `requested`, trimmed and cut to [`MAX_NAME`] characters, or
/// `player-<id>` when that leaves nothing.
pub fn player_name(requested: &str, id: u64) -> String {
    let name: String = requested.trim().chars().take(MAX_NAME).collect();
    let name = name.trim_end();
    if name.is_empty() {
        format!("player-{id}")
    } else {
        name.to_owned()
    }
}

/// Why a stroke is refused, if it is.
pub fn check_stroke(stroke: &Stroke) -> Result<(), String> {
    if stroke.points.is_empty() || stroke.points.len() > MAX_POINTS {
        return Err(format!("a stroke has 1 to {MAX_POINTS} points"));
    }
    if stroke.points.iter().any(|&(x, y)| x > WIDTH || y > HEIGHT) {
        return Err(format!("points lie within {WIDTH}×{HEIGHT}"));
    }
    Ok(())
}

/// The strokes kept for players who join later: the most recent ones, bounded by
/// [`HISTORY_STROKES`] and [`HISTORY_POINTS`].
#[derive(Debug, Default)]
pub struct History {
    strokes: std::collections::VecDeque<Drawn>,
    points: usize,
}

impl History {
    /// Adds a stroke, forgetting the oldest ones beyond the bounds.
    pub fn push(&mut self, drawn: Drawn) {
        self.points += drawn.points.len();
        self.strokes.push_back(drawn);
        while self.strokes.len() > HISTORY_STROKES || self.points > HISTORY_POINTS {
            let Some(old) = self.strokes.pop_front() else {
                break;
            };
            self.points -= old.points.len();
        }
    }

    /// The strokes kept, oldest first.
    pub fn strokes(&self) -> impl Iterator<Item = &Drawn> {
        self.strokes.iter()
    }
}

/// The TypeScript declarations of this protocol, as committed in
/// `repod-examples/web/whiteboard-protocol.d.ts`.
#[cfg(test)]
pub(crate) fn typescript() -> String {
    use repod::Message;
    use ts_rs::{Config, TS};

    // The JavaScript client decodes MessagePack integers as numbers (exact below 2^53).
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// The whiteboard protocol's message types, generated from the Rust types of\n\
         // repod-examples/src/whiteboard.rs by its test `typescript_declarations_are_current`.\n\
         // Do not edit: change the Rust types, then regenerate with\n\
         //     REPOD_UPDATE_TS=1 cargo test -p repod-examples --lib whiteboard\n",
    );
    fn decl<T: TS>(cfg: &Config, out: &mut String) {
        out.push('\n');
        if let Some(docs) = T::docs() {
            out.push_str(&docs);
        }
        out.push_str("export ");
        out.push_str(&T::decl(cfg));
        out.push('\n');
    }
    decl::<Join>(&cfg, &mut out);
    decl::<Player>(&cfg, &mut out);
    decl::<Welcome>(&cfg, &mut out);
    decl::<Stroke>(&cfg, &mut out);
    decl::<Drawn>(&cfg, &mut out);
    decl::<Joined>(&cfg, &mut out);
    decl::<Left>(&cfg, &mut out);
    let entry = |action: &str, ty: String| format!("    {action}: {ty};\n");
    out.push_str(
        "\n/** The whiteboard for the repod JavaScript client: `connect<WhiteboardProtocol>(url)`. */\n\
         export type WhiteboardProtocol = {\n  /** What a player sends. */\n  client: {\n",
    );
    out.push_str(&entry(Join::ACTION, Join::name(&cfg)));
    out.push_str(&entry(Stroke::ACTION, Stroke::name(&cfg)));
    out.push_str("  };\n  /** What the server sends. */\n  server: {\n");
    out.push_str(&entry(Drawn::ACTION, Drawn::name(&cfg)));
    out.push_str(&entry(Joined::ACTION, Joined::name(&cfg)));
    out.push_str(&entry(Left::ACTION, Left::name(&cfg)));
    out.push_str("  };\n  /** The requests, and what each is answered with. */\n  replies: {\n");
    out.push_str(&entry(
        Join::ACTION,
        <<Join as repod::Request>::Reply as TS>::name(&cfg),
    ));
    out.push_str("  };\n};\n");
    // ts-rs leaves a space after an opening brace.
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typescript_declarations_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/web/whiteboard-protocol.d.ts");
        let fresh = typescript();
        if std::env::var_os("REPOD_UPDATE_TS").is_some_and(|v| v == "1") {
            std::fs::write(path, &fresh).expect("cannot write the declarations");
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{path} is out of date with the Rust types; regenerate it with\n    \
             REPOD_UPDATE_TS=1 cargo test -p repod-examples --lib whiteboard\n\
             --- generated now ---\n{fresh}"
        );
    }

    #[test]
    fn names_are_trimmed_cut_and_never_empty() {
        assert_eq!(player_name("  ada ", 3), "ada");
        assert_eq!(player_name("   ", 3), "player-3");
        assert_eq!(player_name(&"x".repeat(40), 3).chars().count(), MAX_NAME);
    }

    #[test]
    fn strokes_are_bounded() {
        assert!(check_stroke(&Stroke { points: vec![] }).is_err());
        assert!(check_stroke(&Stroke {
            points: vec![(0, 0); MAX_POINTS + 1]
        })
        .is_err());
        assert!(check_stroke(&Stroke {
            points: vec![(WIDTH + 1, 0)]
        })
        .is_err());
        assert!(check_stroke(&Stroke {
            points: vec![(WIDTH, HEIGHT), (0, 0)]
        })
        .is_ok());
    }

    #[test]
    fn history_forgets_the_oldest_beyond_its_bounds() {
        let mut history = History::default();
        let stroke = |id, n| Drawn {
            id,
            color: color_of(id).into(),
            points: vec![(1, 1); n],
        };
        for id in 0..(HISTORY_STROKES as u64 + 5) {
            history.push(stroke(id, 1));
        }
        assert_eq!(history.strokes().count(), HISTORY_STROKES);
        assert_eq!(history.strokes().next().unwrap().id, 5);
        for id in 0..(HISTORY_POINTS / MAX_POINTS + 1) as u64 {
            history.push(stroke(10_000 + id, MAX_POINTS));
        }
        let points: usize = history.strokes().map(|d| d.points.len()).sum();
        assert!(points <= HISTORY_POINTS, "{points}");
        assert_eq!(history.points, points);
    }
}
