//! The chat protocol, shared by `chat-server` and `chat-client`: the complete example of Python
//! repod's documentation.
//!
//! | direction | action | fields |
//! |---|---|---|
//! | client → server | `nickname` | `nickname` |
//! | client → server | `message` | `text` |
//! | server → all | `name_changed` | `old_name`, `new_name` |
//! | server → all | `message` | `text`, `nickname` |
//! | server → sender | `error` | `message` (`"Invalid nickname"`, `"Invalid message"`) |
//! | client → server, first | `login` | `token` (only when the server was started with `--token`) |

use serde::{Deserialize, Serialize};

/// The nickname every connection starts with.
pub const DEFAULT_NICKNAME: &str = "Anonymous";
/// The longest accepted nickname, in characters (after trimming).
pub const MAX_NICKNAME_CHARS: usize = 20;
/// The longest accepted message, in characters (after trimming).
pub const MAX_MESSAGE_CHARS: usize = 500;

/// Client → server: change my nickname.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("nickname")]
pub struct Nickname {
    /// The wanted nickname; a missing key counts as empty, like Python's `data.get(…, "")`.
    #[serde(default)]
    pub nickname: String,
}

/// Client → server: post a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("message")]
pub struct PostMessage {
    /// The text; a missing key counts as empty.
    #[serde(default)]
    pub text: String,
}

/// Client → server, before anything else: the token a server started with `--token` requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("login")]
pub struct Login {
    /// The shared token.
    pub token: String,
}

/// Server → everyone: a message was posted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("message")]
pub struct MessagePosted {
    /// The trimmed text.
    pub text: String,
    /// The poster's nickname.
    pub nickname: String,
}

/// Server → everyone: someone changed nickname.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, repod::Message)]
#[action("name_changed")]
pub struct NameChanged {
    /// The previous nickname.
    pub old_name: String,
    /// The new nickname.
    pub new_name: String,
}

/// Trims a nickname and checks its length; `None` if it is invalid.
pub fn valid_nickname(raw: &str) -> Option<&str> {
    let name = raw.trim();
    (!name.is_empty() && name.chars().count() <= MAX_NICKNAME_CHARS).then_some(name)
}

/// Trims a message and checks its length; `None` if it is invalid.
pub fn valid_message(raw: &str) -> Option<&str> {
    let text = raw.trim();
    (!text.is_empty() && text.chars().count() <= MAX_MESSAGE_CHARS).then_some(text)
}
