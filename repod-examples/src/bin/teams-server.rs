//! The team example of Python repod's documentation: handlers that read the other channels'
//! state.
//!
//! ```text
//! cargo run -p repod-examples --bin teams-server
//! ```

use repod::{ChannelId, Context};
use repod_examples::teams::{
    JoinTeam, PlayerJoinedTeam, PlayerList, RequestPlayers, Said, Say, SetName, TeamJoined,
};

struct TeamChannel {
    player_name: String,
    team_id: Option<u32>,
}

impl Default for TeamChannel {
    fn default() -> Self {
        TeamChannel {
            player_name: "Guest".to_owned(),
            team_id: None,
        }
    }
}

#[repod::channel]
impl TeamChannel {
    #[action]
    fn set_name(&mut self, msg: SetName) -> Result<(), &'static str> {
        let name = msg.name.trim();
        if name.is_empty() || name.chars().count() > 20 {
            return Err("Invalid name");
        }
        self.player_name = name.to_owned();
        Ok(())
    }

    #[action]
    fn join_team(&mut self, ctx: &mut Context<'_, Self>, msg: JoinTeam) {
        let team_id = msg.team_id;
        self.team_id = Some(team_id);
        // Notify the client.
        ctx.send(&TeamJoined { team_id });
        // Tell the other members of the team: the other channels are right there.
        let team_mates: Vec<ChannelId> = ctx
            .channels()
            .filter(|peer| peer.channel.team_id == Some(team_id))
            .map(|peer| peer.id)
            .collect();
        let joined = PlayerJoinedTeam {
            player: self.player_name.clone(),
            team_id,
        };
        for id in team_mates {
            ctx.send_to(id, &joined);
        }
    }

    #[action]
    fn chat(&mut self, ctx: &mut Context<'_, Self>, msg: Say) {
        ctx.send_to_all(&Said {
            text: msg.text,
            from: self.player_name.clone(),
        });
    }

    #[action]
    fn request_players(&mut self, ctx: &mut Context<'_, Self>, _msg: RequestPlayers) {
        let players: Vec<String> = std::iter::once(self.player_name.clone())
            .chain(ctx.channels().map(|peer| peer.channel.player_name.clone()))
            .collect();
        ctx.send(&PlayerList {
            count: players.len() as u32,
            players,
        });
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::server_main::<TeamChannel>(
        "The teams server of the repod examples.",
        |builder| builder,
    )
}
