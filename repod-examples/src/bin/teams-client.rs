//! Bots for the team example: each names itself, joins a team, asks who is there, chats with
//! everyone and with its team.
//!
//! ```text
//! cargo run -p repod-examples --bin teams-client -- --bots 4 --teams 2
//! ```
//!
//! All bots are game-loop clients pumped from one thread. Every event is printed as one line
//! prefixed with the bot's name.

use std::time::{Duration, Instant};

use clap::Parser;
use repod::client::Client;
use repod::{ClientContext, Disconnected, ErrorMessage};
use repod_examples::teams::{
    JoinTeam, PlayerJoinedTeam, PlayerList, RequestPlayers, Said, Say, SetName, TeamJoined,
    TeamSaid, TeamSay,
};
use repod_examples::NetArgs;

/// Bots for the teams example of repod.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// How many bots to run.
    #[arg(long, default_value_t = 4)]
    bots: u32,
    /// How many teams the bots spread over.
    #[arg(long, default_value_t = 2)]
    teams: u32,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

struct Bot {
    name: String,
    team_id: u32,
    done: bool,
}

#[repod::listener]
impl Bot {
    #[action("connected")]
    fn connected(&mut self, ctx: &mut ClientContext<'_>) {
        println!("{}: connected", self.name);
        let _ = ctx.send(&SetName {
            name: self.name.clone(),
        });
        let _ = ctx.send(&JoinTeam {
            team_id: self.team_id,
        });
    }

    #[action]
    fn team_joined(&mut self, ctx: &mut ClientContext<'_>, msg: TeamJoined) {
        println!("{}: joined team {}", self.name, msg.team_id);
        let _ = ctx.send(&RequestPlayers);
        let _ = ctx.send(&Say {
            text: format!("hello from team {}", msg.team_id),
        });
        let _ = ctx.send(&TeamSay {
            text: format!("{} here", self.name),
        });
    }

    #[action]
    fn team_chat(&mut self, msg: TeamSaid) {
        println!(
            "{}: [team {}] <{}> {}",
            self.name, msg.team_id, msg.from, msg.text
        );
    }

    #[action]
    fn player_joined_team(&mut self, msg: PlayerJoinedTeam) {
        println!(
            "{}: {} joined my team {}",
            self.name, msg.player, msg.team_id
        );
    }

    #[action]
    fn player_list(&mut self, msg: PlayerList) {
        println!(
            "{}: {} players: {}",
            self.name,
            msg.count,
            msg.players.join(", ")
        );
    }

    #[action]
    fn chat(&mut self, msg: Said) {
        println!("{}: <{}> {}", self.name, msg.from, msg.text);
    }

    #[action]
    fn error(&mut self, msg: ErrorMessage) {
        println!("{}: error: {}", self.name, msg.message);
    }

    #[action]
    fn disconnected(&mut self, msg: Disconnected) {
        println!("{}: disconnected ({})", self.name, msg.reason);
        self.done = true;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    repod_examples::init_tracing();
    let args = Args::parse();
    let mut bots = Vec::new();
    for i in 0..args.bots {
        let client = Client::builder()
            .codec(args.net.codec)
            .connect(args.net.addr.clone())?;
        let bot = Bot {
            name: format!("bot-{i}"),
            team_id: i % args.teams.max(1),
            done: false,
        };
        bots.push((client, bot));
    }
    let end = Instant::now() + Duration::from_secs_f64(args.seconds);
    while Instant::now() < end && bots.iter().any(|(_, bot)| !bot.done) {
        for (client, bot) in &mut bots {
            client.pump(bot);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for (client, _) in &bots {
        client.close();
    }
    let stop = Instant::now() + Duration::from_secs(2);
    while Instant::now() < stop && bots.iter().any(|(_, bot)| !bot.done) {
        for (client, bot) in &mut bots {
            client.pump(bot);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
