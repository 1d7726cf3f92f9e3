//! The teams protocol, shared by `teams-server` and `teams-client`: the team example of Python
//! repod's documentation, with each team a group of channels on the server.
//!
//! | direction | action | fields |
//! |---|---|---|
//! | client → server | `set_name` | `name` |
//! | client → server | `join_team` | `team_id` |
//! | server → joiner | `team_joined` | `team_id` |
//! | server → the team's other members | `player_joined_team` | `player`, `team_id` |
//! | client → server | `chat` | `text` |
//! | server → all | `chat` | `text`, `from` |
//! | client → server | `team_chat` | `text` |
//! | server → the sender's team, sender included | `team_chat` | `text`, `from`, `team_id` |
//! | client → server | `request_players` | |
//! | server → requester | `player_list` | `count`, `players` |

use serde::{Deserialize, Serialize};

/// Client → server: set my player name (players start as `Guest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("set_name")]
pub struct SetName {
    /// The name.
    pub name: String,
}

/// Client → server: join a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("join_team")]
pub struct JoinTeam {
    /// The team to join.
    pub team_id: u32,
}

/// Server → joiner: you are in the team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("team_joined")]
pub struct TeamJoined {
    /// The team joined.
    pub team_id: u32,
}

/// Server → the other members of a team: someone joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("player_joined_team")]
pub struct PlayerJoinedTeam {
    /// The joiner's name.
    pub player: String,
    /// The team.
    pub team_id: u32,
}

/// Client → server: say something to everyone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Say {
    /// The text.
    pub text: String,
}

/// Server → all: someone said something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("chat")]
pub struct Said {
    /// The text.
    pub text: String,
    /// The speaker's name.
    pub from: String,
}

/// Client → server: say something to my team only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("team_chat")]
pub struct TeamSay {
    /// The text.
    pub text: String,
}

/// Server → the members of a team: one of them said something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("team_chat")]
pub struct TeamSaid {
    /// The text.
    pub text: String,
    /// The speaker's name.
    pub from: String,
    /// The team.
    pub team_id: u32,
}

/// Client → server: who is connected?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("request_players")]
pub struct RequestPlayers;

/// Server → requester: everyone connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("player_list")]
pub struct PlayerList {
    /// How many players are connected.
    pub count: u32,
    /// Their names, the requester's first.
    pub players: Vec<String>,
}
