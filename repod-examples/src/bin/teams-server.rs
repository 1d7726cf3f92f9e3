//! The team example of Python repod's documentation, on groups: each team is a group of
//! channels, so telling a team something costs one push per member, however many players the
//! server holds.
//!
//! ```text
//! cargo run -p repod-examples --bin teams-server
//! ```

use repod::{Context, SendError};
use repod_examples::teams::{
    JoinTeam, PlayerJoinedTeam, PlayerList, RequestPlayers, Said, Say, SetName, TeamJoined,
    TeamSaid, TeamSay,
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

/// The name of a team's group.
fn team_group(team_id: u32) -> String {
    format!("team-{team_id}")
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
    fn join_team(&mut self, ctx: &mut Context<'_, Self>, msg: JoinTeam) -> Result<(), SendError> {
        let team_id = msg.team_id;
        // One team at a time: leave the old one. (On disconnect, a channel leaves its groups
        // by itself.)
        if let Some(old) = self.team_id.replace(team_id) {
            ctx.leave(&team_group(old));
        }
        let group = team_group(team_id);
        ctx.join(&group);
        ctx.send(&TeamJoined { team_id })?;
        // Tell the other members of the team, encoded once.
        ctx.send_to_others_in_group(
            &group,
            &PlayerJoinedTeam {
                player: self.player_name.clone(),
                team_id,
            },
        );
        Ok(())
    }

    #[action]
    fn team_chat(&mut self, ctx: &mut Context<'_, Self>, msg: TeamSay) -> Result<(), &'static str> {
        let team_id = self.team_id.ok_or("Join a team first")?;
        ctx.send_to_group(
            &team_group(team_id),
            &TeamSaid {
                text: msg.text,
                from: self.player_name.clone(),
                team_id,
            },
        );
        Ok(())
    }

    #[action]
    fn chat(&mut self, ctx: &mut Context<'_, Self>, msg: Say) {
        ctx.send_to_all(&Said {
            text: msg.text,
            from: self.player_name.clone(),
        });
    }

    #[action]
    fn request_players(
        &mut self,
        ctx: &mut Context<'_, Self>,
        _msg: RequestPlayers,
    ) -> Result<(), SendError> {
        let players: Vec<String> = std::iter::once(self.player_name.clone())
            .chain(ctx.channels().map(|peer| peer.channel.player_name.clone()))
            .collect();
        ctx.send(&PlayerList {
            count: players.len() as u32,
            players,
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::server_main::<TeamChannel>(
        "The teams server of the repod examples.",
        |builder| builder,
    )
}
