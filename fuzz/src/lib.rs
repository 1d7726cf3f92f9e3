//! Message types shared by the fuzz targets and the seed generator.
//!
//! They cover what a game protocol carries: strings, integers of every width, floats, options,
//! sequences, maps, enums with every kind of variant, nested structs and a unit message.

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use repod::Message;
use serde::{Deserialize, Serialize};

/// A one-field message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub struct Chat {
    pub text: String,
}

impl Message for Chat {
    const ACTION: &'static str = "chat";
}

/// A message with no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Arbitrary)]
pub struct Ping;

impl Message for Ping {
    const ACTION: &'static str = "ping";
}

/// An enum field with unit, newtype, tuple and struct variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub enum Stance {
    Idle,
    Walk(u8),
    Emote(String, bool),
    Attack { target: u64, damage: i16 },
}

/// A nested struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub struct Item {
    pub name: String,
    pub count: u16,
    pub weight: f32,
}

/// A message exercising most of serde's data model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub struct PlayerState {
    pub id: u64,
    pub name: String,
    pub pos: (f64, f64),
    pub hp: u8,
    pub delta: i64,
    pub small: i8,
    pub big: u128,
    pub alive: bool,
    pub letter: char,
    pub tags: Vec<String>,
    pub inventory: BTreeMap<String, u32>,
    pub target: Option<u64>,
    pub stance: Stance,
    pub held: Option<Box<Item>>,
    pub items: Vec<Item>,
    pub blob: Vec<u8>,
}

impl Message for PlayerState {
    const ACTION: &'static str = "player_state";
}

/// One of the messages above, for targets that pick a type from their input.
#[derive(Debug, Clone, PartialEq, Serialize, Arbitrary)]
pub enum AnyMessage {
    Chat(Chat),
    Ping(Ping),
    PlayerState(Box<PlayerState>),
}

/// A sample of each message, used to seed the corpora.
pub fn samples() -> Vec<AnyMessage> {
    let mut inventory = BTreeMap::new();
    inventory.insert("arrow".to_owned(), 20);
    inventory.insert("potion".to_owned(), 3);
    let item = Item {
        name: "sword".to_owned(),
        count: 1,
        weight: 3.5,
    };
    vec![
        AnyMessage::Chat(Chat {
            text: "Hello".to_owned(),
        }),
        AnyMessage::Chat(Chat {
            text: String::new(),
        }),
        AnyMessage::Ping(Ping),
        AnyMessage::PlayerState(Box::new(PlayerState {
            id: 7,
            name: "ann".to_owned(),
            pos: (1.5, -2.25),
            hp: 100,
            delta: -300_000,
            small: -5,
            big: u128::MAX - 1,
            alive: true,
            letter: 'é',
            tags: vec!["red".to_owned(), "mage".to_owned()],
            inventory,
            target: Some(3),
            stance: Stance::Attack {
                target: 3,
                damage: -12,
            },
            held: Some(Box::new(item.clone())),
            items: vec![item],
            blob: vec![0, 1, 2, 255],
        })),
        AnyMessage::PlayerState(Box::new(PlayerState {
            id: 0,
            name: String::new(),
            pos: (0.0, 0.0),
            hp: 0,
            delta: 0,
            small: 0,
            big: 0,
            alive: false,
            letter: 'a',
            tags: Vec::new(),
            inventory: BTreeMap::new(),
            target: None,
            stance: Stance::Emote("wave".to_owned(), false),
            held: None,
            items: Vec::new(),
            blob: Vec::new(),
        })),
    ]
}
