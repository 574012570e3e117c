"""Realistic synthetic social-prescribing activities (contract §2) for demos, tests and training."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .contract import ACCESSIBILITY, DAYS

__all__ = ["ARCHETYPES", "Archetype", "generate_catalogue", "LEEDS_CENTRE"]

LEEDS_CENTRE: tuple[float, float] = (53.7997, -1.5492)
_KM_PER_DEG = 6371.0088 * math.pi / 180.0

# --- presets ---------------------------------------------------------------------------------

Cost = tuple[tuple[float, float], ...]  # (GBP per session, probability)
FREE: Cost = ((0, 1.0),)
MOSTLY_FREE: Cost = ((0, 0.8), (1, 0.05), (2, 0.1), (3, 0.05))
SMALL: Cost = ((0, 0.3), (2, 0.25), (2.5, 0.1), (3, 0.2), (4, 0.1), (5, 0.05))
CLASS: Cost = ((0, 0.1), (3, 0.25), (4, 0.3), (5, 0.25), (6, 0.1))
MEAL: Cost = ((0, 0.1), (3, 0.3), (3.5, 0.2), (4, 0.25), (5, 0.15))
SWIM: Cost = ((0, 0.1), (2.5, 0.2), (3.2, 0.3), (4.2, 0.3), (5.5, 0.1))
GYM: Cost = ((0, 0.15), (2.5, 0.15), (3.5, 0.25), (4.5, 0.25), (6, 0.1), (8.5, 0.1))
PANTRY: Cost = ((0, 0.2), (3.5, 0.5), (4, 0.2), (5, 0.1))

WEEKDAYS = "mon tue wed thu fri"
ALL_WEEK = "mon tue wed thu fri sat sun"
Times = tuple[tuple[str, str], ...]
MORNING: Times = (
    ("09:30", "11:30"), ("10:00", "12:00"), ("10:00", "11:30"), ("10:30", "12:00"),
    ("09:00", "10:00"), ("10:00", "11:00"),
)  # fmt: skip
MIDDAY: Times = (("12:00", "14:00"), ("11:30", "13:30"), ("12:00", "13:30"), ("12:30", "14:00"))
AFTERNOON: Times = (("13:00", "15:00"), ("13:30", "15:30"), ("14:00", "16:00"), ("14:00", "15:30"))
EVENING: Times = (("18:00", "20:00"), ("18:30", "20:30"), ("19:00", "21:00"), ("19:30", "21:30"))
OFFICE: Times = (
    ("09:30", "12:30"), ("10:00", "13:00"), ("13:30", "16:30"), ("09:00", "17:00"),
    ("10:00", "16:00"),
)  # fmt: skip
DAYTIME: Times = MORNING + AFTERNOON


@dataclass(frozen=True)
class Archetype:
    """One kind of activity a link worker meets, with the distributions its listings follow."""

    key: str
    names: tuple[str, ...]  # templates with a {place} slot
    descriptions: tuple[str, ...]  # differently worded templates; {place} slot allowed
    tags: tuple[str, ...]
    needs: tuple[str, ...]  # the first is always listed, the rest usually
    extra_needs: tuple[str, ...] = ()  # listed now and then
    format: str = "group"
    venue: str = "hall"
    organisations: tuple[str, ...] = ()
    days: str = WEEKDAYS
    times: Times = DAYTIME
    sessions: tuple[float, float, float] = (0.85, 0.12, 0.03)  # P(1, 2, 3 sessions a week)
    p_arrange: float = 0.04  # no fixed sessions: by arrangement
    cost: Cost = MOSTLY_FREE
    capacity: tuple[int, int] | None = (8, 25)
    min_ages: tuple[int, ...] = ()
    max_age: int | None = None
    p_age: float = 0.0
    gender: str | None = None
    p_gender: float = 0.0
    p_online: float = 0.0
    p_professional: float = 0.08
    languages: tuple[str, ...] = ()
    p_languages: float = 0.03
    weight: float = 1.0


A = Archetype

# The table is data, laid out for reading rather than by the formatter.
# fmt: off
ARCHETYPES: list[Archetype] = [
    A(
        "health_walk",
        ("{place} Health Walk", "Walk and Talk {place}", "Stepping Out in {place}",
         "{place} Wellbeing Walk", "Steady Strollers {place}"),
        ("A gentle, led walk of about an hour at an easy pace, finishing with a cuppa. Trained "
         "walk leaders make sure nobody gets left behind.",
         "Short health walks around {place} on flat paths. A great way to get moving, meet "
         "people and enjoy some fresh air.",
         "Friendly group strolls through local parks and green spaces, 30 to 60 minutes. Ideal "
         "if you are just getting back into exercise.",
         "Walking for health: free weekly walks led by volunteers. Walk at your own pace and "
         "chat as you go.",
         "Join our walking group for a stroll and a natter. Routes are step-free where possible "
         "and there is always a shorter option."),
        ("walking", "health walk", "outdoors", "fresh air", "walking group", "stroll"),
        ("physical_activity", "loneliness", "mental_wellbeing"),
        ("long_term_condition", "weight"),
        venue="outdoor",
        organisations=("{place} Walking for Health", "{place} Neighbourhood Network",
                       "{place} Health Walks"),
        days=ALL_WEEK, times=(("10:00", "11:00"), ("10:30", "11:30"), ("13:30", "14:30"),
                              ("11:00", "12:00")),
        cost=FREE, capacity=(10, 30), weight=2.5,
    ),
    A(
        "nordic_walking",
        ("Nordic Walking {place}", "{place} Nordic Walkers", "Nordic Walking for Beginners"),
        ("Nordic walking uses poles to work your upper body as you walk — a full-body workout "
         "that is kind to your joints. Poles provided.",
         "Learn the Nordic walking technique with a qualified instructor, then join our "
         "regular brisk walks around {place}.",
         "Pole walking group for all fitness levels. Burns more calories than ordinary walking "
         "and takes the strain off knees and hips."),
        ("nordic walking", "walking", "poles", "fitness", "outdoors"),
        ("physical_activity", "mental_wellbeing", "loneliness"),
        ("weight", "long_term_condition"),
        venue="outdoor", days=ALL_WEEK, times=MORNING + (("18:00", "19:00"),),
        cost=((0, 0.35), (3, 0.3), (4, 0.25), (5, 0.1)), capacity=(6, 16), weight=0.7,
    ),
    A(
        "allotment",
        ("{place} Community Allotment", "Grow Together {place}", "{place} Allotment Group",
         "Plot to Plate {place}", "Dig In {place}"),
        ("Get your hands dirty on our shared allotment plot. Grow veg, fruit and flowers "
         "alongside friendly volunteers; no experience needed, tools and gloves provided.",
         "Green fingers or complete beginner, everyone is welcome at our community plot. We "
         "grow seasonal veg and share the harvest.",
         "Horticulture sessions outdoors: sowing, weeding, composting and harvesting. Tea and "
         "biscuits in the shed afterwards.",
         "Growing veg together on a community allotment in {place}. Good for body and mind, "
         "and you get to take some produce home.",
         "A friendly gardening group tending raised beds and a polytunnel. Learn how to grow "
         "your own food."),
        ("gardening", "allotment", "growing", "outdoors", "vegetables", "horticulture"),
        ("mental_wellbeing", "loneliness", "physical_activity"),
        ("food", "learning"),
        venue="garden",
        organisations=("{place} Growers", "{place} Community Allotment Society",
                       "{place} Green Spaces"),
        days=ALL_WEEK, times=MORNING + AFTERNOON, cost=FREE, capacity=(6, 20), weight=1.8,
    ),
    A(
        "therapeutic_gardening",
        ("Therapeutic Gardening {place}", "{place} Wellbeing Garden", "Healing Gardens Project",
         "Roots to Recovery {place}"),
        ("Social and therapeutic horticulture for people living with stress, anxiety or low "
         "mood. Gentle tasks in a calm walled garden, at your own pace.",
         "A supported gardening project: planting, potting on and caring for the wildlife "
         "pond. Raised beds make it accessible to wheelchair users.",
         "Spend time in nature with a small group, growing herbs and flowers. Staff are "
         "trained to support people recovering from mental ill health.",
         "Therapeutic horticulture in a peaceful community garden — digging, planting and "
         "sharing a brew."),
        ("gardening", "horticulture", "nature", "therapeutic", "community garden"),
        ("mental_wellbeing", "loneliness"),
        ("long_term_condition", "physical_activity"),
        venue="garden", days=WEEKDAYS, times=MORNING + AFTERNOON, cost=FREE, capacity=(5, 12),
        p_professional=0.45, weight=0.9,
    ),
    A(
        "community_choir",
        ("{place} Community Choir", "{place} Singers", "Sing Out {place}", "{place} Rock Choir",
         "Voices of {place}"),
        ("A friendly community choir: no auditions and no need to read music. We sing pop, "
         "folk and gospel songs in harmony.",
         "Come and sing! Our vocal group learns everything by ear, and singing together is "
         "proven to lift your mood.",
         "A relaxed sing-along for all voices, from show tunes to Motown. Tea break halfway.",
         "Join our non-auditioned choir for warm-ups, harmony singing and a lot of laughter. "
         "We perform locally a few times a year.",
         "Singing group for adults of all abilities — if you can talk, you can sing."),
        ("choir", "singing", "music", "vocal group", "harmony"),
        ("loneliness", "mental_wellbeing"),
        ("learning",),
        venue="hall", days=WEEKDAYS, times=EVENING + AFTERNOON, cost=SMALL, capacity=(20, 60),
        p_online=0.04, weight=1.4,
    ),
    A(
        "singing_for_brain",
        ("Singing for the Brain-style Group {place}", "Memory Singers {place}",
         "{place} Musical Memories", "Sing and Remember {place}"),
        ("Inspired by Singing for the Brain: a warm welcome for people living with dementia "
         "and their carers, with familiar songs, warm-up exercises and a cuppa.",
         "Singing sessions for people with memory problems and the people who care for them. "
         "Music brings back memories and helps everyone feel connected.",
         "A sing-along of well-loved songs from the 50s and 60s for people with dementia. "
         "Carers and family are welcome to stay and join in."),
        ("dementia", "singing", "music", "memory", "carers"),
        ("long_term_condition", "loneliness", "carers"),
        ("mental_wellbeing",),
        venue="hall", times=AFTERNOON + MORNING, cost=FREE, capacity=(12, 30),
        p_professional=0.2, weight=0.6,
    ),
    A(
        "ukulele",
        ("{place} Ukulele Club", "Uke Can Do It {place}", "Strum Along {place}",
         "{place} Ukulele Beginners"),
        ("Learn to play the ukulele from scratch in a relaxed, friendly group. Loan ukes "
         "available, so you don't need to buy one to start.",
         "A strum-and-sing ukulele group for beginners and improvers. Simple chords, fun songs, "
         "lots of laughter.",
         "Pick up a uke and play along! We learn three chords in the first session and play "
         "whole songs by week two."),
        ("ukulele", "music", "learning an instrument", "strumming"),
        ("loneliness", "learning", "mental_wellbeing"),
        venue="hall", times=EVENING + AFTERNOON, cost=SMALL, capacity=(8, 25), weight=0.6,
    ),
    A(
        "breathe_easy",
        ("Breathe Easy {place}", "Singing for Lung Health {place}",
         "{place} Better Breathing Group", "Breathe Better Choir"),
        ("Singing for lung health, for people with COPD, asthma or other breathing problems. "
         "Breathing exercises and songs help you control your breath.",
         "A peer support group for anyone living with a lung condition. Talks, breathing "
         "techniques and friendly company.",
         "Gentle singing and breathing practice led by a trained practitioner, suitable for "
         "people who get breathless."),
        ("COPD", "breathing", "lung health", "singing", "asthma"),
        ("long_term_condition", "loneliness"),
        ("physical_activity", "mental_wellbeing"),
        venue="hall", times=AFTERNOON + MORNING, cost=FREE, capacity=(10, 25), min_ages=(18,),
        p_age=0.2, p_professional=0.35, p_online=0.1, weight=0.6,
    ),
    A(
        "art_class",
        ("Art for Wellbeing {place}", "{place} Art Club", "Paint and Relax {place}",
         "Creative Minds {place}", "Drop-in Drawing {place}"),
        ("Creative art sessions for wellbeing: painting, drawing, collage and printmaking. All "
         "materials provided and no experience needed.",
         "Relax and express yourself through art in a supportive group. Try watercolours, "
         "acrylics and sketching.",
         "Arts and crafts group where you can learn new techniques and make friends. A tutor "
         "is on hand to help.",
         "Mindful painting in a calm space — focus on the process, not the result.",
         "A friendly art class for beginners covering the basics of drawing and colour."),
        ("art", "painting", "drawing", "creative", "arts and crafts"),
        ("mental_wellbeing", "loneliness", "learning"),
        venue="hall", times=DAYTIME + EVENING, cost=SMALL, capacity=(6, 16), p_online=0.06,
        weight=1.4,
    ),
    A(
        "knit_and_natter",
        ("Knit and Natter {place}", "{place} Crafty Crew", "Stitch and Chat {place}",
         "{place} Craft Club", "Crochet Corner {place}"),
        ("Bring your knitting, crochet or sewing and join us for a natter over a brew. "
         "Beginners welcome — we'll teach you.",
         "Crafts and conversation: a sociable group making cards, knitting blankets and "
         "chatting. Needles and yarn available.",
         "A relaxed craft group for anyone who likes making things with their hands. Share "
         "skills and make new friends.",
         "Knitting, crochet and cross-stitch circle that meets in the café. Lots of tea and "
         "lots of chat."),
        ("knitting", "crochet", "crafts", "sewing", "natter"),
        ("loneliness", "mental_wellbeing"),
        ("learning",),
        venue="cafe", times=DAYTIME, cost=MOSTLY_FREE, capacity=(6, 20), weight=1.4,
    ),
    A(
        "mens_shed",
        ("{place} Men's Shed", "{place} Community Shed", "The Shed {place}"),
        ("A workshop space where men come together to make, mend and chat — woodwork, "
         "restoring bikes and fixing things for the community.",
         "Shoulder to shoulder: a men's shed with tools, a kettle and good company. Share "
         "your skills or learn new ones.",
         "Our shed is a place for practical projects, from bird boxes to benches, and for a "
         "laugh with the lads.",
         "Men's shed for woodworking, metalwork and tinkering. Retired or not, drop in for "
         "a brew and a project."),
        ("men's shed", "woodwork", "DIY", "making", "tools"),
        ("loneliness", "mental_wellbeing"),
        ("learning", "employment"),
        venue="hall", organisations=("{place} Men's Shed", "{place} Shed Association"),
        days=WEEKDAYS, times=MORNING + AFTERNOON, sessions=(0.6, 0.3, 0.1), cost=SMALL,
        capacity=(6, 15), min_ages=(18,), p_age=0.4, gender="male", p_gender=0.85, weight=1.0,
    ),
    A(
        "telephone_befriending",
        ("Telephone Befriending", "{place} Phone Friends", "Call in Time {place}",
         "Friendly Voices Telephone Service", "Chatty Calls"),
        ("A trained volunteer will give you a friendly phone call every week, at a time that "
         "suits you. Someone to talk to, a chat and a laugh.",
         "Telephone befriending for people who feel lonely or isolated: regular calls from the "
         "same volunteer so you can get to know each other.",
         "Our befrienders ring for a chat about anything from the football to the garden. "
         "Ideal if you find it hard to get out.",
         "Weekly befriending calls by phone or video for older people living alone."),
        ("befriending", "phone", "chat", "isolation", "companionship"),
        ("loneliness", "mental_wellbeing"),
        format="one_to_one", venue="office", p_arrange=0.85, cost=FREE, capacity=None,
        min_ages=(50, 55, 60, 65), p_age=0.55, p_online=0.9, p_professional=0.5,
        languages=("pl", "ur", "pa", "bn"), p_languages=0.06, weight=1.1,
    ),
    A(
        "home_befriending",
        ("{place} Befriending Service", "Good Neighbours {place}", "Visiting Friends {place}",
         "Companions {place}"),
        ("A volunteer befriender visits you at home each week for a cup of tea and a chat, or "
         "to go out for a walk or to the shops together.",
         "Face-to-face befriending for people who are isolated: we match you with a volunteer "
         "who shares your interests.",
         "Regular home visits from a friendly, DBS-checked volunteer. Support to get out and "
         "about and reconnect with your community."),
        ("befriending", "home visits", "companionship", "isolation"),
        ("loneliness", "mental_wellbeing"),
        format="one_to_one", venue="office", p_arrange=0.9, cost=FREE, capacity=None,
        min_ages=(55, 60, 65), p_age=0.5, p_professional=0.55, weight=0.8,
    ),
    A(
        "lunch_club",
        ("{place} Lunch Club", "Luncheon Club {place}", "{place} Friendship Lunch",
         "Tuesday Table {place}", "Dinner and Chat {place}"),
        ("A hot two-course lunch with good company, for older people in {place}. Transport "
         "can be arranged.",
         "Lunch club serving a freshly cooked meal, pudding and a cuppa, followed by bingo or "
         "a quiz.",
         "Come along for a home-cooked dinner and a chat. Special diets catered for if you let "
         "us know.",
         "Friendly midday meal and social for over-60s. A chance to meet people and have a "
         "proper hot meal."),
        ("lunch club", "hot meal", "social", "older people", "bingo"),
        ("loneliness", "food"),
        venue="hall", times=MIDDAY, cost=MEAL, capacity=(15, 40), min_ages=(60, 55, 65),
        p_age=0.7, p_professional=0.1, weight=1.3,
    ),
    A(
        "tea_dance",
        ("{place} Tea Dance", "Afternoon Tea Dance", "{place} Ballroom Social",
         "Strictly Tea Dance {place}"),
        ("Old-time, ballroom and sequence dancing with tea and cake. Partners not needed — "
         "come and watch or join in.",
         "A traditional tea dance with music from the 40s, 50s and 60s. Dance, listen or just "
         "enjoy the company.",
         "Afternoon of dancing and socialising: waltz, foxtrot and line dancing for all "
         "abilities."),
        ("tea dance", "dancing", "ballroom", "music", "social"),
        ("loneliness", "physical_activity"),
        ("mental_wellbeing",),
        venue="hall", times=AFTERNOON, cost=((2, 0.3), (3, 0.4), (4, 0.2), (0, 0.1)),
        capacity=(20, 60), min_ages=(50, 55, 60), p_age=0.6, weight=0.7,
    ),
    A(
        "chair_exercise",
        ("Chair-Based Exercise {place}", "Seated Exercise {place}", "Sit and Be Fit {place}",
         "{place} Move It or Lose It", "Gentle Movement {place}"),
        ("Seated exercise class to improve strength, balance and mobility. Suitable if you "
         "are unsteady on your feet or use a walking aid.",
         "Chair-based exercise to music: gentle movement to keep joints supple and build "
         "strength, all from the comfort of a chair.",
         "Strength and balance exercises for older adults, done seated or standing with "
         "support. Helps reduce the risk of falls.",
         "Keep moving with a fun, low-impact seated workout led by a qualified instructor."),
        ("chair exercise", "seated exercise", "strength and balance", "gentle exercise",
         "mobility"),
        ("physical_activity", "long_term_condition", "loneliness"),
        venue="hall", times=MORNING + AFTERNOON, cost=SMALL, capacity=(8, 25),
        min_ages=(55, 60, 65), p_age=0.3, p_online=0.07, weight=1.4,
    ),
    A(
        "falls_prevention",
        ("Strength and Balance {place}", "Steady Steps {place}", "Falls Prevention Class",
         "Stay Steady {place}"),
        ("A 24-week evidence-based strength and balance programme for people who have had a "
         "fall or are worried about falling.",
         "Postural stability classes led by a specialist instructor: build leg strength, "
         "improve balance and gain confidence.",
         "Exercise class designed to reduce falls, with exercises you can also do at home."),
        ("falls prevention", "strength and balance", "exercise", "older people"),
        ("physical_activity", "long_term_condition"),
        venue="health", days=WEEKDAYS, times=MORNING + AFTERNOON, cost=FREE, capacity=(8, 15),
        min_ages=(60, 65), p_age=0.6, p_professional=0.6, weight=0.6,
    ),
    A(
        "tai_chi",
        ("Tai Chi {place}", "{place} Tai Chi for Health", "Qigong and Tai Chi",
         "Morning Tai Chi in the Park"),
        ("Slow, flowing tai chi movements to improve balance, breathing and calm. Suitable for "
         "all ages and abilities, including seated.",
         "Tai chi for health: gentle exercise that helps with arthritis, balance and stress.",
         "A relaxing tai chi and qigong class, focusing on posture, balance and mindfulness.",
         "Learn the Sun-style tai chi short form at a gentle pace."),
        ("tai chi", "qigong", "balance", "gentle exercise", "relaxation"),
        ("physical_activity", "mental_wellbeing", "long_term_condition"),
        venue="hall", times=MORNING, cost=CLASS, capacity=(8, 20), p_online=0.06, weight=0.9,
    ),
    A(
        "gentle_yoga",
        ("Gentle Yoga {place}", "Chair Yoga {place}", "Yoga for Wellbeing",
         "{place} Slow Flow Yoga", "Yoga for Beginners {place}"),
        ("Gentle yoga for beginners and people with limited mobility: stretching, breathing "
         "and relaxation. Chairs available.",
         "Chair yoga — all the benefits of yoga without getting down on the floor. Improves "
         "flexibility and eases stress.",
         "A calm, gentle movement class combining yoga, pilates-style stretches and breathing "
         "exercises.",
         "Slow-paced yoga and relaxation to help with anxiety, sleep and aches and pains."),
        ("yoga", "chair yoga", "stretching", "relaxation", "pilates", "breathing"),
        ("physical_activity", "mental_wellbeing"),
        ("long_term_condition",),
        venue="hall", days=ALL_WEEK, times=MORNING + EVENING, cost=CLASS, capacity=(8, 20),
        p_online=0.12, weight=1.2,
    ),
    A(
        "swimming",
        ("{place} Over-50s Swim", "Quiet Swim {place}", "Aqua Aerobics {place}",
         "Swim for Health {place}", "Adult Learn to Swim"),
        ("Relaxed swimming session in a quieter pool, with lanes for gentle lengths. Changing "
         "rooms have level access.",
         "Aqua aerobics: a fun, low-impact workout in the water that is easy on the joints.",
         "Adult swimming lessons for beginners and nervous swimmers, in small groups.",
         "Swim and aqua fit sessions for people who want to get active at their own pace."),
        ("swimming", "pool", "aqua aerobics", "water exercise"),
        ("physical_activity",),
        ("weight", "long_term_condition", "loneliness"),
        venue="leisure", days=ALL_WEEK, times=MORNING + AFTERNOON + (("18:00", "19:00"),),
        organisations=("{place} Leisure Centre", "Active {place}"),
        sessions=(0.5, 0.35, 0.15), cost=SWIM, capacity=(10, 40), min_ages=(50, 16),
        p_age=0.35, weight=1.0,
    ),
    A(
        "womens_swim",
        ("Women-Only Swim {place}", "Ladies' Swim Session", "Women's Aqua Fit {place}"),
        ("Women-only swimming with female lifeguards and covered windows. Modest swimwear "
         "welcome.",
         "A relaxed swim for women and girls, with a female instructor available for tips.",
         "Women's aqua fitness session: music, movement and a friendly atmosphere."),
        ("swimming", "women only", "pool", "aqua fit"),
        ("physical_activity",),
        ("weight", "loneliness"),
        venue="leisure", days=ALL_WEEK, times=EVENING + AFTERNOON, cost=SWIM, capacity=(10, 35),
        gender="female", p_gender=0.95, languages=("ur", "ar", "so", "bn"), p_languages=0.12,
        weight=0.4,
    ),
    A(
        "walking_football",
        ("{place} Walking Football", "Walking Football for Over-50s", "{place} Walking Footy"),
        ("Football at walking pace: no running, no slide tackles, just the beautiful game. "
         "Good for fitness and a laugh.",
         "Walking football for all abilities, ideal if you love football but your knees "
         "don't. Bibs and balls provided.",
         "Weekly walking football kickabout followed by a brew. New players always welcome."),
        ("walking football", "football", "sport", "team"),
        ("physical_activity", "loneliness"),
        ("mental_wellbeing", "long_term_condition"),
        venue="sports", days=ALL_WEEK, times=MORNING + EVENING, cost=SMALL, capacity=(10, 30),
        min_ages=(50, 40), p_age=0.6, gender="male", p_gender=0.15, weight=0.8,
    ),
    A(
        "walking_netball",
        ("{place} Walking Netball", "Walking Netball Beginners"),
        ("Walking netball: the same game, slowed down, for women of any age and fitness. "
         "Great for getting back into sport.",
         "A friendly walking netball session — no running or jumping, lots of laughing."),
        ("walking netball", "netball", "sport", "team"),
        ("physical_activity", "loneliness"),
        ("mental_wellbeing",),
        venue="sports", days=ALL_WEEK, times=EVENING + MORNING, cost=SMALL, capacity=(10, 24),
        gender="female", p_gender=0.8, weight=0.4,
    ),
    A(
        "cycling",
        ("{place} Social Cycle Rides", "Pedal Power {place}", "Cycling for Health {place}",
         "Learn to Ride {place}", "{place} Bike Library"),
        ("Gentle led bike rides on quiet roads and traffic-free paths. Bikes, including "
         "adapted bikes and trikes, can be borrowed.",
         "Learn to ride or get your cycling confidence back with patient instructors.",
         "Social cycling group: easy-paced rides of 5 to 15 miles with a café stop.",
         "Borrow a bike for free and join our weekly rides along the canal towpath."),
        ("cycling", "bikes", "bike ride", "outdoors", "inclusive cycling"),
        ("physical_activity", "mental_wellbeing"),
        ("loneliness", "weight"),
        venue="outdoor", days=ALL_WEEK, times=MORNING + AFTERNOON, cost=MOSTLY_FREE,
        capacity=(6, 15), weight=0.7,
    ),
    A(
        "parkrun",
        ("{place} Park 5k", "{place} parkrun", "Saturday 5k Run-Walk {place}"),
        ("A free, weekly, timed 5k in the park: walk, jog, run or volunteer. Everyone is "
         "welcome, and many people walk the whole way.",
         "Like parkrun — turn up on Saturday morning, register once, and walk or run 5km with "
         "hundreds of friendly people. Coffee afterwards.",
         "Community 5k every Saturday at 9am. Tail walker means you'll never finish last."),
        ("parkrun", "running", "5k", "jogging", "walking", "volunteering"),
        ("physical_activity", "loneliness", "mental_wellbeing"),
        ("weight",),
        venue="outdoor", days="sat", times=(("09:00", "10:00"),), sessions=(1.0, 0.0, 0.0),
        p_arrange=0.0, cost=FREE, capacity=None, weight=0.5,
    ),
    A(
        "gym_referral",
        ("Exercise on Referral {place}", "Active Referral Scheme", "{place} GP Exercise Referral",
         "Get Active Programme {place}"),
        ("A 12-week supervised exercise programme at the leisure centre for people with a "
         "health condition, at a reduced price. An instructor builds a plan with you.",
         "Exercise referral: gym, swim and classes with specialist support for conditions "
         "such as high blood pressure, diabetes or depression.",
         "Discounted gym access and one-to-one support to help you become more active safely.",
         "Supported gym sessions — workout plans tailored to you, in a welcoming, non-"
         "judgemental setting."),
        ("gym", "exercise referral", "fitness", "workout", "leisure centre"),
        ("physical_activity", "long_term_condition", "weight"),
        ("mental_wellbeing",),
        format="one_to_one", venue="leisure", days=ALL_WEEK, times=MORNING + AFTERNOON + EVENING,
        organisations=("{place} Leisure Centre", "Active {place}"),
        sessions=(0.3, 0.4, 0.3), cost=GYM, capacity=(8, 20), min_ages=(16, 18), p_age=0.7,
        p_professional=0.85, weight=0.9,
    ),
    A(
        "weight_management",
        ("Healthy Weight {place}", "{place} Weight Management Group", "Shape Up {place}",
         "Eat Well, Move More {place}", "Fresh Start Healthy Lifestyles"),
        ("A 12-week healthy weight programme: practical tips on eating well, portion sizes "
         "and being more active, with weekly weigh-ins if you want them.",
         "Friendly group support to lose weight and keep it off, led by a dietitian. No "
         "fad diets, no judgement.",
         "Healthy lifestyle sessions covering nutrition, label reading, cooking swaps and "
         "gentle exercise.",
         "Slimming support group with healthy eating advice and motivation."),
        ("weight loss", "healthy eating", "nutrition", "weight management", "diet"),
        ("weight", "physical_activity"),
        ("long_term_condition", "mental_wellbeing"),
        venue="health", times=DAYTIME + EVENING, cost=((0, 0.75), (4, 0.1), (5, 0.1),
                                                      (6.5, 0.05)),
        capacity=(8, 20), min_ages=(18,), p_age=0.6, p_online=0.18, p_professional=0.5,
        weight=0.9,
    ),
    A(
        "cookery_budget",
        ("Cook on a Budget {place}", "{place} Cook and Eat", "Food Skills {place}",
         "Healthy Cooking for Less"),
        ("Learn to cook simple, healthy meals on a budget. Each week we cook together and eat "
         "what we've made; take-home ingredient bags included.",
         "Cookery course for beginners: knife skills, batch cooking and making food go further.",
         "Cook and eat sessions — make tasty, low-cost family meals and share them round the "
         "table.",
         "Practical cooking class with tips on saving money on your food shop and reducing "
         "waste."),
        ("cooking", "cookery", "budget", "healthy eating", "recipes"),
        ("food", "weight", "learning"),
        ("money", "loneliness"),
        venue="hall", times=MORNING + AFTERNOON + EVENING, cost=((0, 0.8), (1, 0.1), (2, 0.1)),
        capacity=(6, 12), p_online=0.05, p_professional=0.2, weight=0.8,
    ),
    A(
        "food_bank",
        ("{place} Food Bank", "{place} Emergency Food Parcels", "Community Food Bank {place}"),
        ("Emergency food parcels for people in crisis, with three days of nutritionally "
         "balanced food. A voucher from a referral agency is usually needed.",
         "Food bank offering food parcels, toiletries and a warm drink. Advisers are on hand "
         "to help with the reasons you're struggling.",
         "If you can't afford to eat, we can help with emergency food and signposting to "
         "money advice."),
        ("food bank", "food parcels", "emergency food", "crisis support"),
        ("food", "money"),
        ("housing",),
        format="one_to_one", venue="faith", days=WEEKDAYS,
        organisations=("{place} Food Bank", "{place} Churches Together", "{place} Food Aid"),
        times=(("10:00", "12:00"), ("12:00", "14:00"), ("13:00", "15:00"), ("17:00", "19:00")),
        sessions=(0.5, 0.35, 0.15), cost=FREE, capacity=None, p_professional=0.65, weight=1.0,
    ),
    A(
        "food_pantry",
        ("{place} Community Pantry", "{place} Food Pantry", "Community Fridge {place}",
         "Social Supermarket {place}"),
        ("Membership food pantry: pay a small weekly amount and choose groceries worth much "
         "more, including fresh fruit and veg.",
         "Our community fridge shares surplus food from local shops — free, no questions "
         "asked.",
         "A low-cost social supermarket open to anyone in {place} who needs help stretching "
         "their food budget.",
         "Pantry with affordable food shopping and a friendly café corner."),
        ("food pantry", "groceries", "community fridge", "surplus food", "low cost food"),
        ("food", "money"),
        ("loneliness",),
        format="one_to_one", venue="hall", days=ALL_WEEK, times=OFFICE + MIDDAY,
        sessions=(0.5, 0.3, 0.2), cost=PANTRY, capacity=None, weight=0.8,
    ),
    A(
        "community_cafe",
        ("{place} Pay-As-You-Feel Café", "Community Café {place}", "{place} Real Junk Food Café",
         "Open Table {place}"),
        ("A pay-as-you-feel café serving hot meals made from surplus food. Everyone eats "
         "together, whatever they can pay.",
         "Community meal every week: a free hot dinner and a friendly welcome for anyone who "
         "turns up.",
         "Café with cheap, healthy food and a space to meet people. Volunteering "
         "opportunities available."),
        ("community café", "pay as you feel", "hot meal", "community meal"),
        ("food", "loneliness"),
        ("money", "employment"),
        venue="cafe", days=ALL_WEEK, times=MIDDAY + (("17:00", "19:00"),),
        cost=((0, 0.9), (2, 0.05), (3, 0.05)), capacity=(20, 60), weight=0.9,
    ),
    A(
        "warm_space",
        ("{place} Warm Space", "Warm Welcome {place}", "Warm Hub {place}"),
        ("A free warm place to spend time in winter, with hot drinks, soup, Wi-Fi and "
         "company. No need to explain why you're here.",
         "Warm welcome space: drop in for a brew, a chat and help with energy bills.",
         "Come in from the cold — a cosy, friendly space with free refreshments and activities."),
        ("warm space", "warm hub", "energy costs", "free drinks", "drop-in"),
        ("loneliness", "money"),
        ("food",),
        venue="library", days=ALL_WEEK, times=OFFICE + MIDDAY, sessions=(0.4, 0.35, 0.25),
        cost=FREE, capacity=(15, 50), weight=0.7,
    ),
    A(
        "debt_advice",
        ("{place} Money Advice Drop-in", "Debt Advice {place}", "Money Matters {place}",
         "{place} Advice Surgery"),
        ("Free, confidential and impartial advice on debt, bills and budgeting — the kind of "
         "help Citizens Advice offers. We can deal with creditors for you.",
         "Money advice drop-in: help with debts, rent and council tax arrears, energy bills "
         "and making a budget.",
         "Struggling with money? Our trained advisers help you sort out debts, work out a "
         "repayment plan and maximise your income.",
         "Specialist debt advice, including debt relief orders and bankruptcy."),
        ("debt advice", "money advice", "budgeting", "bills", "Citizens Advice"),
        ("money",),
        ("housing", "mental_wellbeing"),
        format="one_to_one", venue="office", times=OFFICE, sessions=(0.5, 0.35, 0.15),
        organisations=("{place} Advice Centre", "Money Advice {place}", "{place} Law Centre"),
        p_arrange=0.2, cost=FREE, capacity=None, p_online=0.22, p_professional=0.1, weight=1.2,
    ),
    A(
        "benefits_advice",
        ("Welfare Rights {place}", "{place} Benefits Advice", "Benefits Check-up {place}",
         "Help with PIP and Universal Credit"),
        ("Welfare rights advice: check you're getting every benefit you're entitled to, and "
         "help with forms for PIP, Attendance Allowance and Universal Credit.",
         "Benefits advice and support with appeals and mandatory reconsiderations.",
         "Free benefit checks and help filling in claim forms, by appointment or drop-in.",
         "Advice on income, benefits and grants for people on low incomes."),
        ("benefits advice", "welfare rights", "Universal Credit", "PIP", "form filling"),
        ("money",),
        ("long_term_condition", "carers"),
        format="one_to_one", venue="office", times=OFFICE, sessions=(0.6, 0.3, 0.1),
        organisations=("{place} Advice Centre", "{place} Welfare Rights Unit"),
        p_arrange=0.25, cost=FREE, capacity=None, p_online=0.2, p_professional=0.15, weight=1.0,
    ),
    A(
        "housing_advice",
        ("{place} Housing Advice", "Housing Options Drop-in {place}", "Home Matters {place}",
         "Tenancy Support {place}"),
        ("Housing advice for tenants and homeowners: repairs, rent arrears, eviction notices "
         "and finding somewhere to live.",
         "Help if you're homeless or at risk of losing your home, including support with "
         "housing applications.",
         "Tenancy sustainment support: a caseworker helps you keep your home and manage "
         "bills.",
         "Advice on damp and mould, disrepair, landlord disputes and your rights as a renter."),
        ("housing advice", "homelessness", "tenancy", "renting", "eviction"),
        ("housing",),
        ("money", "mental_wellbeing"),
        format="one_to_one", venue="office", times=OFFICE, sessions=(0.6, 0.3, 0.1),
        p_arrange=0.35, cost=FREE, capacity=None, min_ages=(16, 18), p_age=0.15,
        p_online=0.1, p_professional=0.3, weight=0.8,
    ),
    A(
        "job_club",
        ("{place} Job Club", "Employment Support {place}", "Work Ready {place}",
         "Jobs and Skills Hub {place}"),
        ("Job club with help on CVs, application forms and interview practice. Computers and "
         "printing available.",
         "One-to-one employment support to help you find work, training or volunteering, at "
         "your own pace.",
         "Back to work support for people with health conditions: confidence building, job "
         "searching and help talking to employers.",
         "Drop in for help with job searches, online applications and Universal Jobmatch-style "
         "sites."),
        ("job club", "employment", "CV", "job search", "interview skills"),
        ("employment",),
        ("digital", "learning", "money"),
        venue="library", times=MORNING + AFTERNOON, sessions=(0.6, 0.3, 0.1), p_arrange=0.1,
        cost=FREE, capacity=(5, 15), min_ages=(16, 18), p_age=0.3, p_online=0.12,
        p_professional=0.2, weight=1.0,
    ),
    A(
        "volunteering",
        ("Volunteer Centre {place}", "Volunteering Opportunities {place}",
         "Give It a Go Volunteering", "{place} Community Volunteers"),
        ("Find a volunteering role that suits you — from charity shops to gardening to "
         "helping at events. We'll support you through your first few weeks.",
         "Volunteering builds confidence, skills and friendships. Chat with us about "
         "opportunities in {place}.",
         "Supported volunteering for people who'd like to get back into work or just meet "
         "people and give something back."),
        ("volunteering", "volunteer", "giving back", "skills"),
        ("employment", "loneliness"),
        ("mental_wellbeing", "learning"),
        format="one_to_one", venue="office", times=OFFICE, p_arrange=0.5, cost=FREE,
        capacity=None, min_ages=(16, 18), p_age=0.3, p_online=0.05, weight=0.8,
    ),
    A(
        "conservation",
        ("{place} Green Gym", "Conservation Volunteers {place}", "Friends of {place} Woods",
         "Nature Volunteers {place}", "{place} Litter Heroes"),
        ("Green gym: get fit outdoors doing practical conservation — hedge laying, path "
         "building and tree planting.",
         "Conservation volunteering in local woods and nature reserves. Tools, training and "
         "tea provided.",
         "Help look after our green spaces: litter picking, wildflower planting and looking "
         "after the pond.",
         "Outdoor volunteering with a friendly team, improving habitats for wildlife."),
        ("conservation", "volunteering", "nature", "outdoors", "green gym", "litter picking"),
        ("physical_activity", "mental_wellbeing", "employment"),
        ("loneliness",),
        venue="outdoor", days=ALL_WEEK, times=MORNING + AFTERNOON, cost=FREE, capacity=(6, 20),
        min_ages=(16, 18), p_age=0.2, weight=0.8,
    ),
    A(
        "esol",
        ("English Conversation Club {place}", "ESOL Classes {place}",
         "{place} English for Speakers of Other Languages", "Talk English {place}"),
        ("Free English classes for speakers of other languages (ESOL), from beginner to "
         "intermediate. Creche available at some sessions.",
         "English conversation club: practise speaking English in a relaxed and friendly "
         "group, and make new friends.",
         "Learn English for everyday life — shopping, appointments and work. All levels "
         "welcome.",
         "Informal English language practice with volunteer tutors, plus help with reading "
         "letters."),
        ("ESOL", "English classes", "language", "conversation"),
        ("learning", "loneliness"),
        ("employment",),
        venue="library", times=MORNING + AFTERNOON + EVENING, sessions=(0.5, 0.4, 0.1),
        cost=FREE, capacity=(8, 20), min_ages=(16, 19), p_age=0.4, p_online=0.08,
        languages=("ar", "ur", "ku", "fa", "ti", "so", "pl", "ro", "zh", "uk"),
        p_languages=0.45, weight=0.9,
    ),
    A(
        "adult_learning",
        ("{place} Adult Learning", "Community Learning {place}", "Improve Your Maths and English",
         "Learn Something New {place}"),
        ("Free short courses for adults in {place}: maths, English, wellbeing and creative "
         "subjects. Friendly tutors and small groups.",
         "Adult education classes to brush up your skills, gain a qualification or just "
         "learn for fun.",
         "Family learning and community courses — try something new and meet people.",
         "Functional skills maths and English, plus courses in confidence building and "
         "first aid."),
        ("adult learning", "courses", "education", "maths", "English", "qualifications"),
        ("learning",),
        ("employment", "mental_wellbeing", "loneliness"),
        venue="library", times=MORNING + AFTERNOON + EVENING, cost=((0, 0.75), (2, 0.1),
                                                                    (5, 0.15)),
        capacity=(8, 16), min_ages=(19, 16), p_age=0.25, p_online=0.2, weight=0.9,
    ),
    A(
        "digital_drop_in",
        ("{place} Digital Drop-in", "Get Online {place}", "Tech Help {place}",
         "Tablet and Smartphone Help", "Digital Buddies {place}"),
        ("Get help using your smartphone, tablet or laptop — from video calling family to "
         "ordering repeat prescriptions and using the NHS App.",
         "Digital skills drop-in: patient volunteers help you get online, set up email and "
         "stay safe from scams.",
         "Learn to use the internet at your own pace. Borrow a tablet and get free data if you "
         "need it.",
         "Computer help for beginners: emails, online forms, Universal Credit journals and "
         "online shopping."),
        ("digital skills", "computers", "internet", "tablet", "smartphone", "NHS App"),
        ("digital", "learning"),
        ("loneliness", "money"),
        format="one_to_one", venue="library", times=MORNING + AFTERNOON, p_arrange=0.1,
        cost=FREE, capacity=(4, 12), weight=1.1,
    ),
    A(
        "digital_course",
        ("Online Skills Course", "Digital Confidence Course", "Computers for Beginners {place}",
         "Zoom for Beginners"),
        ("A short course to build your digital confidence: using email, video calls, online "
         "banking and staying safe online.",
         "Computer course for complete beginners, run in small groups with loan laptops.",
         "Learn essential digital skills over six weeks, with certificates at the end."),
        ("digital skills", "computers", "online safety", "course", "email"),
        ("digital", "learning"),
        ("employment",),
        venue="library", times=MORNING + AFTERNOON, cost=FREE, capacity=(6, 12),
        p_online=0.4, weight=0.5,
    ),
    A(
        "carers_cafe",
        ("{place} Carers' Café", "Carers' Support Group {place}", "Time for You Carers' Group",
         "{place} Carers' Coffee Morning"),
        ("A relaxed café for unpaid carers to take a break, share experiences and get "
         "information. The person you care for is welcome too.",
         "Support group for people who look after a family member or friend — peer support, "
         "speakers and pampering sessions.",
         "If you care for someone, come and meet other carers who understand. Advice on "
         "carer's assessments and Carer's Allowance available.",
         "Carers' coffee morning: a cuppa, a chat and a bit of time for yourself."),
        ("carers", "caring", "peer support", "respite", "coffee morning"),
        ("carers", "loneliness", "mental_wellbeing"),
        ("money",),
        venue="cafe", times=MORNING + AFTERNOON, cost=FREE, capacity=(8, 25), p_online=0.08,
        organisations=("{place} Carers' Network", "Carers Together {place}"),
        weight=0.9,
    ),
    A(
        "carers_support",
        ("Carers Support Service", "{place} Carers' Hub", "Carers' Advice Line"),
        ("One-to-one support for unpaid carers: information, emotional support, carer's "
         "assessments and help planning for emergencies.",
         "A carers' support worker can help you look after your own health and wellbeing "
         "while caring for someone else.",
         "Advice and support for carers of all ages, including young adult carers."),
        ("carers", "carer support", "advice", "carer's assessment"),
        ("carers",),
        ("money", "mental_wellbeing"),
        format="one_to_one", venue="office", times=OFFICE, p_arrange=0.6, cost=FREE,
        capacity=None, p_online=0.25, p_professional=0.2, weight=0.6,
    ),
    A(
        "young_carers",
        ("Young Adult Carers {place}", "YAC Group {place}"),
        ("A group for young adult carers aged 16 to 25 to relax, have fun and get support "
         "with caring, college and work.",
         "Meet other young people who look after someone at home: trips, activities and a "
         "worker to talk to."),
        ("young carers", "carers", "young people", "peer support"),
        ("carers", "loneliness"),
        ("mental_wellbeing", "employment"),
        venue="hall", times=EVENING, cost=FREE, capacity=(6, 15), min_ages=(16,), max_age=25,
        p_age=0.95, weight=0.25,
    ),
    A(
        "bereavement_group",
        ("{place} Bereavement Group", "Living with Loss {place}", "Bereavement Café {place}",
         "Grief Support Circle"),
        ("A safe space to talk about the person you have lost with others who understand. "
         "Facilitated by trained volunteers.",
         "Bereavement café: an informal, friendly drop-in for anyone grieving, however long "
         "ago your loss.",
         "Peer support group for people coping with grief and loss, including bereavement by "
         "suicide.",
         "Meet others who have lost a partner or loved one, over tea and cake."),
        ("bereavement", "grief", "loss", "peer support"),
        ("bereavement", "mental_wellbeing", "loneliness"),
        venue="faith", times=AFTERNOON + EVENING + MORNING, cost=FREE, capacity=(6, 18),
        min_ages=(18,), p_age=0.4, p_online=0.12, p_professional=0.15, weight=0.8,
    ),
    A(
        "bereavement_counselling",
        ("Bereavement Counselling", "{place} Grief Counselling Service", "Loss and Grief Support"),
        ("Free one-to-one bereavement counselling with a qualified counsellor, usually six to "
         "twelve weekly sessions.",
         "Talk in confidence about your grief with a trained bereavement support volunteer.",
         "Counselling for adults struggling after the death of someone close."),
        ("bereavement", "counselling", "grief", "talking therapy"),
        ("bereavement", "mental_wellbeing"),
        format="one_to_one", venue="health", p_arrange=0.75, cost=((0, 0.8), (10, 0.1),
                                                                    (20, 0.1)),
        capacity=None, min_ages=(18,), p_age=0.6, p_online=0.3, p_professional=0.5, weight=0.5,
    ),
    A(
        "dementia_cafe",
        ("{place} Memory Café", "Dementia Café {place}", "Forget-Me-Not Café {place}",
         "Dementia Friendly Social"),
        ("A welcoming café for people living with dementia and their carers, with activities, "
         "music and information from dementia advisers.",
         "Memory café: reminiscence, games and a cuppa in a dementia-friendly setting.",
         "Social drop-in for people with memory loss and their families — meet others and "
         "find out about local support."),
        ("dementia", "memory café", "carers", "reminiscence", "Alzheimer's"),
        ("long_term_condition", "carers", "loneliness"),
        venue="cafe", times=MORNING + AFTERNOON, cost=((0, 0.7), (2, 0.2), (3, 0.1)),
        capacity=(10, 30), weight=0.8,
    ),
    A(
        "memory_group",
        ("{place} Memory Group", "Brain Train {place}", "Cognitive Stimulation Group",
         "Keep Your Mind Active"),
        ("Cognitive stimulation sessions for people with mild memory problems: quizzes, word "
         "games, discussion and reminiscence.",
         "A friendly group to keep your brain active, with puzzles, memory exercises and "
         "conversation.",
         "Post-diagnosis group for people with early-stage dementia."),
        ("memory", "dementia", "brain training", "quizzes", "reminiscence"),
        ("long_term_condition", "loneliness"),
        ("learning", "carers"),
        venue="health", times=MORNING + AFTERNOON, cost=FREE, capacity=(6, 14),
        min_ages=(50, 60), p_age=0.3, p_professional=0.5, weight=0.5,
    ),
    A(
        "peer_support",
        ("{place} Wellbeing Peer Support", "Mind Matters {place}", "Anxiety Support Group",
         "Hope and Recovery {place}", "Open Minds Peer Group"),
        ("Peer support for people living with anxiety, depression or stress. Share what "
         "helps, in a confidential and non-judgemental group.",
         "A mental health support group run by people with lived experience. Come and talk, "
         "or just listen.",
         "Drop-in for anyone feeling low, anxious or overwhelmed: coping skills, "
         "self-help tools and friendly faces.",
         "Wellbeing group using mindfulness, CBT-based self-help and peer support to help "
         "you manage low mood."),
        ("mental health", "anxiety", "depression", "peer support", "wellbeing"),
        ("mental_wellbeing", "loneliness"),
        venue="health", days=ALL_WEEK, times=AFTERNOON + EVENING, cost=FREE, capacity=(6, 16),
        min_ages=(18, 16), p_age=0.5, p_online=0.3, weight=1.1,
    ),
    A(
        "talking_therapies",
        ("NHS Talking Therapies Self-Referral", "Talking Therapies Information Session",
         "Mental Health Self-Referral Drop-in"),
        ("You can refer yourself to NHS Talking Therapies for anxiety and depression — "
         "counselling, CBT and guided self-help. We can help you with the form.",
         "Information about free psychological therapies and how to self-refer, with online "
         "courses while you wait.",
         "Short, free talking therapy for stress, worry, panic and low mood."),
        ("talking therapies", "counselling", "CBT", "anxiety", "depression", "self-referral"),
        ("mental_wellbeing",),
        format="one_to_one", venue="health", times=OFFICE, p_arrange=0.7, cost=FREE,
        capacity=None, min_ages=(16, 18), p_age=0.8, p_online=0.55, p_professional=0.05,
        weight=0.5,
    ),
    A(
        "mindfulness",
        ("Mindfulness for Wellbeing", "{place} Meditation Group", "Calm Minds {place}",
         "Stress Less Course"),
        ("An eight-week mindfulness course teaching simple meditation and breathing "
         "practices to manage stress.",
         "Weekly guided meditation and relaxation group — all welcome, no experience needed.",
         "Learn practical ways to cope with stress and worry, from sleep tips to mindfulness."),
        ("mindfulness", "meditation", "relaxation", "stress"),
        ("mental_wellbeing",),
        ("long_term_condition", "learning"),
        venue="hall", days=ALL_WEEK, times=EVENING + MORNING, cost=((0, 0.6), (3, 0.2),
                                                                    (5, 0.2)),
        capacity=(8, 20), min_ages=(18,), p_age=0.3, p_online=0.3, weight=0.6,
    ),
    A(
        "recovery_group",
        ("{place} Recovery Group", "SMART Recovery-style Meeting {place}", "Recovery Café",
         "Forward Steps {place}"),
        ("A mutual aid meeting for people wanting to change their drinking or drug use, "
         "based on the SMART Recovery approach. Free and confidential.",
         "Recovery café: a sober social space with food, activities and peer support for "
         "people in recovery from addiction.",
         "Peer-led recovery group for alcohol, drugs or gambling, using practical tools to "
         "stay motivated.",
         "Support for anyone worried about their drinking — come along, listen and share if "
         "you want to."),
        ("recovery", "alcohol", "drugs", "addiction", "SMART Recovery", "sobriety"),
        ("substance_use", "mental_wellbeing"),
        ("loneliness",),
        venue="hall", days=ALL_WEEK, times=EVENING + AFTERNOON, cost=FREE, capacity=(6, 20),
        organisations=("{place} Recovery Community", "{place} Recovery Network"),
        min_ages=(18,), p_age=0.9, p_online=0.18, weight=0.8,
    ),
    A(
        "alcohol_service",
        ("Alcohol and Drug Support {place}", "{place} Recovery Hub", "Drink Check Drop-in"),
        ("Free, confidential support for adults who want to cut down or stop drinking or "
         "using drugs, including needle exchange and treatment referral.",
         "Drop in to talk to a recovery worker about alcohol or drug use, no appointment "
         "needed.",
         "One-to-one support to reduce or stop drinking, plus help for families affected."),
        ("alcohol", "drugs", "recovery", "treatment", "harm reduction"),
        ("substance_use",),
        ("mental_wellbeing", "housing"),
        format="one_to_one", venue="office", times=OFFICE, sessions=(0.4, 0.4, 0.2),
        p_arrange=0.25, cost=FREE, capacity=None, min_ages=(18,), p_age=0.85,
        p_online=0.1, p_professional=0.2, weight=0.5,
    ),
    A(
        "diabetes_education",
        ("Type 2 Diabetes Education", "Living Well with Diabetes {place}",
         "Diabetes Support Group {place}", "Healthier You Programme"),
        ("Structured education for people with type 2 diabetes: understanding blood sugar, "
         "medication, food and activity.",
         "A diabetes support group for people living with diabetes and their families, with "
         "talks from specialist nurses.",
         "Programme to help people at risk of type 2 diabetes eat well and move more.",
         "Learn to manage your diabetes in a friendly group led by a dietitian."),
        ("diabetes", "type 2 diabetes", "blood sugar", "education", "healthy eating"),
        ("long_term_condition", "weight"),
        ("learning", "physical_activity"),
        venue="health", times=MORNING + AFTERNOON + EVENING, cost=FREE, capacity=(8, 20),
        min_ages=(18,), p_age=0.7, p_online=0.2, p_professional=0.7, weight=0.6,
    ),
    A(
        "pain_management",
        ("Living Well with Pain", "Persistent Pain Programme", "{place} Pain Support Group",
         "Moving with Pain"),
        ("A course for people living with persistent pain: pacing, gentle exercise, sleep "
         "and managing flare-ups.",
         "Pain management programme led by physiotherapists and psychologists to help you do "
         "more of what matters.",
         "Peer support for people with chronic pain and fibromyalgia — share coping "
         "strategies in a supportive group."),
        ("chronic pain", "pain management", "fibromyalgia", "arthritis", "pacing"),
        ("long_term_condition", "mental_wellbeing"),
        ("physical_activity",),
        venue="health", times=MORNING + AFTERNOON, cost=FREE, capacity=(6, 15),
        min_ages=(18,), p_age=0.6, p_online=0.2, p_professional=0.7, weight=0.5,
    ),
    A(
        "condition_support",
        ("{place} Stroke Club", "Parkinson's Support Group {place}", "Heart Support Group",
         "Cancer Support Drop-in {place}", "Sight Loss Social {place}"),
        ("A friendly support group for people living with a long-term condition and their "
         "families: talks, exercise and a chance to chat.",
         "Stroke survivors' club with gentle exercise, speech practice and a social afternoon.",
         "Peer support for people affected by cancer — a listening ear, information and "
         "complementary therapies.",
         "Social group for people with sight loss, with talking books and large-print "
         "information."),
        ("support group", "stroke", "Parkinson's", "cancer", "sight loss", "heart"),
        ("long_term_condition", "loneliness"),
        ("carers", "mental_wellbeing"),
        venue="health", times=AFTERNOON + MORNING, cost=FREE, capacity=(8, 25),
        p_professional=0.2, weight=0.8,
    ),
    A(
        "book_club",
        ("{place} Book Club", "Library Reading Group {place}", "Page Turners {place}",
         "Bookworms {place}"),
        ("A friendly book group that meets monthly to chat about what we've been reading. "
         "Copies available from the library.",
         "Reading group: discuss novels, memoirs and poetry over coffee. New readers welcome.",
         "Book club for people who love stories — relaxed, sociable and no homework pressure."),
        ("book club", "reading", "books", "library", "literature"),
        ("loneliness", "learning"),
        ("mental_wellbeing",),
        venue="library", days=ALL_WEEK, times=EVENING + AFTERNOON, cost=FREE, capacity=(6, 15),
        p_online=0.1, weight=0.8,
    ),
    A(
        "shared_reading",
        ("Shared Reading {place}", "Read Aloud Group {place}", "Stories and Poems Aloud"),
        ("Shared reading: a great story or poem is read aloud and we talk about it. No "
         "reading needed beforehand, just come and listen.",
         "A weekly read-aloud group — relax, listen to short stories and poems and chat "
         "about them.",
         "Reading together helps with low mood and loneliness. Tea and biscuits provided."),
        ("shared reading", "reading", "poetry", "stories", "read aloud"),
        ("loneliness", "mental_wellbeing"),
        venue="library", times=MORNING + AFTERNOON, cost=FREE, capacity=(6, 12), weight=0.5,
    ),
    A(
        "photography",
        ("{place} Photo Walks", "Photography Club {place}", "Camera Club for Beginners",
         "Picture This {place}"),
        ("Photography for wellbeing: gentle walks to take photos with your phone or camera, "
         "then share and talk about them.",
         "Beginners' camera club covering composition, light and editing.",
         "Explore {place} through a lens — a relaxed photo walk group for all abilities."),
        ("photography", "camera", "photo walk", "creative"),
        ("learning", "mental_wellbeing", "loneliness"),
        ("physical_activity",),
        venue="outdoor", days=ALL_WEEK, times=MORNING + AFTERNOON + EVENING, cost=SMALL,
        capacity=(6, 15), weight=0.5,
    ),
    A(
        "bowls",
        ("{place} Bowls Club", "Short Mat Bowls {place}", "Crown Green Bowls Taster"),
        ("Crown green bowls in the park: coaching and woods provided, just wear flat shoes.",
         "Indoor short mat bowls, a gentle sport that suits all ages and abilities.",
         "A friendly bowls club welcoming new members — social games, tea and the odd "
         "competition."),
        ("bowls", "crown green bowls", "sport", "outdoors"),
        ("loneliness", "physical_activity"),
        venue="bowls", days=ALL_WEEK, times=AFTERNOON + MORNING, cost=SMALL, capacity=(8, 30),
        min_ages=(50, 55), p_age=0.3, weight=0.5,
    ),
    A(
        "coffee_morning",
        ("{place} Coffee Morning", "Chatterbox {place}", "Friendship Club {place}",
         "Monday Social {place}", "Tea and Chat {place}"),
        ("A friendly coffee morning open to all — come for a brew, a biscuit and a chat.",
         "Social club with games, quizzes, trips and talks. A chance to get out of the house "
         "and meet new people.",
         "Drop-in social for anyone who'd like some company. Dominoes, cards and jigsaws.",
         "Friendship group for older people in {place}: chat, bingo and outings."),
        ("coffee morning", "social", "friendship", "chat", "games"),
        ("loneliness",),
        ("mental_wellbeing",),
        venue="hall", days=ALL_WEEK, times=MORNING + AFTERNOON, cost=((0, 0.6), (1, 0.25),
                                                                      (2, 0.15)),
        capacity=(10, 40), min_ages=(50, 55, 60), p_age=0.2, weight=1.8,
    ),
    A(
        "heritage_group",
        ("{place} Local History Group", "Heritage Walks {place}", "{place} Memories Project"),
        ("Explore the history of {place} through old photos, talks and local walks.",
         "A local history society with monthly talks and research projects — all welcome.",
         "Share your memories and help record the history of your neighbourhood."),
        ("local history", "heritage", "history", "talks"),
        ("learning", "loneliness"),
        venue="library", times=AFTERNOON + EVENING, cost=SMALL, capacity=(10, 40), weight=0.4,
    ),
    A(
        "drama_group",
        ("{place} Community Theatre", "Drama for Wellbeing", "{place} Players"),
        ("Have fun with drama games, improvisation and performance. Build confidence in a "
         "supportive group — no acting experience needed.",
         "Community theatre group putting on a show each year. Act, sing or help backstage.",
         "Creative drama sessions for adults to express themselves and have a laugh."),
        ("drama", "theatre", "acting", "performance", "confidence"),
        ("loneliness", "mental_wellbeing", "learning"),
        venue="hall", days=ALL_WEEK, times=EVENING, cost=SMALL, capacity=(8, 25), weight=0.4,
    ),
    A(
        "dance_fitness",
        ("Zumba Gold {place}", "Dance Fitness {place}", "Line Dancing {place}",
         "Seated Dance {place}"),
        ("Low-impact dance fitness to Latin and pop music, easy to follow and great fun.",
         "Line dancing for beginners — learn the steps in a friendly class.",
         "Dance yourself fit! Gentle cardio and toning for older adults and beginners."),
        ("dance", "zumba", "line dancing", "fitness", "music"),
        ("physical_activity", "weight", "loneliness"),
        ("mental_wellbeing",),
        venue="hall", days=ALL_WEEK, times=MORNING + EVENING, cost=CLASS, capacity=(10, 30),
        p_online=0.05, weight=0.8,
    ),
    A(
        "money_skills",
        ("Managing Money Course", "{place} Credit Union Savers Club", "Budgeting Skills {place}"),
        ("A short course on budgeting, saving and avoiding loan sharks, run with the local "
         "credit union.",
         "Learn to manage your money: budgeting apps, bank accounts and cutting bills.",
         "Savers club and affordable loans from a not-for-profit credit union."),
        ("budgeting", "money skills", "credit union", "saving"),
        ("money", "learning"),
        ("digital",),
        venue="library", times=MORNING + AFTERNOON, cost=FREE, capacity=(6, 15),
        p_online=0.15, weight=0.4,
    ),
    A(
        "veterans",
        ("{place} Veterans' Breakfast Club", "Armed Forces Drop-in {place}", "Veterans' Hub"),
        ("Breakfast and banter for ex-forces personnel and their families — meet people who've "
         "been there.",
         "A drop-in for veterans offering peer support, advice on housing and benefits, and "
         "signposting to mental health services.",
         "Social group for veterans of all services and ages."),
        ("veterans", "armed forces", "ex-forces", "breakfast club"),
        ("loneliness", "mental_wellbeing"),
        ("housing", "money"),
        venue="cafe", days=ALL_WEEK, times=MORNING, cost=((0, 0.5), (3, 0.3), (5, 0.2)),
        capacity=(10, 40), min_ages=(18,), p_age=0.3, weight=0.4,
    ),
    A(
        "mens_talking",
        ("{place} Men's Talking Group", "Lads Chat {place}", "It's Good to Talk Men's Group",
         "Men's Mental Health Peer Group"),
        ("A peer-to-peer support group for men: a safe space to talk about what's on your "
         "mind, every Monday at 7pm. #ItsOkayToTalk",
         "Men's mental health group, inspired by Andy's Man Club. No judgement, no pressure, "
         "just talk and a brew.",
         "A place for men to talk through storms they've been through or are going through."),
        ("men's mental health", "talking group", "peer support", "men"),
        ("mental_wellbeing", "loneliness"),
        ("bereavement",),
        venue="hall", days="mon", times=(("19:00", "21:00"),), sessions=(1.0, 0.0, 0.0),
        p_arrange=0.0, cost=FREE, capacity=(10, 40), min_ages=(18,), p_age=0.9, gender="male",
        p_gender=1.0, p_online=0.05, weight=0.6,
    ),
    A(
        "womens_group",
        ("{place} Women's Group", "Sisters Together {place}", "Women's Wellbeing Circle",
         "{place} Ladies' Social"),
        ("A women-only space to relax, chat and try new things: crafts, cooking, exercise and "
         "guest speakers. Creche available.",
         "Friendly women's group for mums and women of all backgrounds. Make friends and "
         "learn new skills.",
         "Women's wellbeing group offering peer support, trips and English conversation."),
        ("women's group", "women only", "social", "wellbeing"),
        ("loneliness", "mental_wellbeing"),
        ("learning", "physical_activity"),
        venue="hall", times=MORNING + AFTERNOON, cost=FREE, capacity=(8, 25), gender="female",
        p_gender=1.0, min_ages=(18, 16), p_age=0.3, languages=("ur", "pa", "bn", "ar", "so"),
        p_languages=0.35, weight=0.8,
    ),
    A(
        "lgbtq_social",
        ("{place} LGBTQ+ Social", "Rainbow Social {place}", "Pride Coffee Club",
         "Out and About {place}"),
        ("A friendly social group for LGBTQ+ adults: coffee, quiz nights and walks.",
         "Safe, welcoming space for lesbian, gay, bisexual, trans and queer people to meet "
         "and chat.",
         "LGBTQ+ over-50s social — friendship, support and fun."),
        ("LGBTQ+", "social", "pride", "community"),
        ("loneliness", "mental_wellbeing"),
        venue="cafe", days=ALL_WEEK, times=EVENING + AFTERNOON, cost=FREE, capacity=(8, 30),
        min_ages=(18, 50), p_age=0.5, p_online=0.15, weight=0.4,
    ),
    A(
        "faith_community",
        ("{place} Community Lunch", "Langar at the Gurdwara", "Open Doors {place}",
         "{place} Church Friendship Group"),
        ("Free community meal served every week, open to everyone of any faith or none.",
         "Langar: a free vegetarian meal served to all visitors at the gurdwara.",
         "Our church hall opens its doors for a warm welcome, a hot drink and a chat.",
         "A faith-based friendship group welcoming people of all backgrounds."),
        ("faith", "community meal", "church", "free food", "friendship"),
        ("loneliness", "food"),
        ("mental_wellbeing",),
        venue="faith", days=ALL_WEEK, times=MIDDAY + MORNING, cost=FREE, capacity=(20, 80),
        languages=("pa", "ur", "pl", "gu"), p_languages=0.15, weight=0.7,
    ),
    A(
        "young_adults",
        ("Youth Wellbeing Group {place}", "Next Steps 16-25", "Young People's Hub {place}"),
        ("A group for young people aged 16 to 25 to build confidence, make friends and plan "
         "their next steps into work or training.",
         "Youth wellbeing sessions: gaming, art, cooking and someone to talk to.",
         "Support for 16 to 25-year-olds who are feeling low, isolated or out of work."),
        ("young people", "youth", "confidence", "wellbeing"),
        ("mental_wellbeing", "loneliness", "employment"),
        ("learning",),
        venue="hall", times=AFTERNOON + EVENING, cost=FREE, capacity=(6, 20), min_ages=(16,),
        max_age=25, p_age=0.95, p_online=0.12, weight=0.4,
    ),
    A(
        "deaf_social",
        ("Deaf Social Club {place}", "BSL Coffee Morning", "Hard of Hearing Support Group"),
        ("A social club for Deaf people and BSL users: chat, games and events in British Sign "
         "Language.",
         "Support group for people with hearing loss: lipreading tips, equipment demos and "
         "company.",
         "Coffee morning in BSL — learners welcome too."),
        ("deaf", "BSL", "hearing loss", "sign language", "lipreading"),
        ("loneliness", "long_term_condition"),
        ("learning",),
        venue="hall", times=MORNING + EVENING, cost=FREE, capacity=(8, 30), weight=0.3,
    ),
]
# fmt: on
del A

# --- words that dress up a record ------------------------------------------------------------

_GENERIC_PLACES: tuple[str, ...] = (
    "Northfield", "Westgate", "Eastwood", "Southmoor", "Brookside", "Millbank", "Oak Lane",
    "Hillfoot", "Beckside", "Greenside", "Moorside", "Ashfield", "Low Town", "Church Hill",
    "Riverside", "Parkside", "Woodhouse Moor", "Castle Hill", "Fairfield", "Highfield",
    "Springwell", "Kirkby", "Thornton", "Lingfield", "Hawthorn", "Elmwood", "Stonegate",
    "Bankside", "Marsh End", "Newtown",
)  # fmt: skip
_SAINTS = (
    "St Michael's", "St Chad's", "St Mary's", "St John's", "All Saints", "St Matthew's",
    "Holy Trinity", "St Peter's", "St Andrew's", "St Margaret's", "St Edmund's", "St Aidan's",
    "St Wilfrid's", "St Bartholomew's", "Christ Church",
)  # fmt: skip
_STREETS = (
    "Church Lane", "Station Road", "High Street", "Main Street", "Back Lane", "Victoria Road",
    "Town Street", "Green Road", "Moor Road", "Park Avenue", "Chapel Street", "Mill Lane",
    "Queen Street", "Kirkgate", "Springfield Road", "Cross Street", "North Lane",
)  # fmt: skip
_VENUES: dict[str, tuple[str, ...]] = {
    "hall": (
        "{saint} Church Hall",
        "Community Centre",
        "Methodist Church Hall",
        "Village Hall",
        "Baptist Church",
        "Unity Hall",
        "Neighbourhood Network Hub",
        "Jubilee Hall",
        "Scout Hut",
        "Resource Centre",
        "Miners' Welfare Hall",
        "Community Hub",
    ),
    "outdoor": (
        "Park main gates",
        "Park café",
        "Recreation Ground",
        "Woods car park",
        "Library steps",
        "Bandstand in the park",
        "Canal towpath by the lock",
        "Community Centre car park",
    ),
    "garden": (
        "Community Allotments",
        "Community Garden",
        "Walled Garden",
        "Urban Farm",
        "Allotment site, plot 12",
        "Growing Space behind the Community Centre",
    ),
    "leisure": (
        "Leisure Centre",
        "Sports Centre",
        "Swimming Pool",
        "Fitness Centre",
        "Wellbeing Centre",
    ),
    "sports": (
        "Sports Centre",
        "Astroturf pitch",
        "Community Sports Hall",
        "Cricket Club",
        "Leisure Centre",
    ),
    "bowls": ("Bowling Club", "Park bowling green", "Indoor Bowls Centre"),
    "office": (
        "Advice Centre",
        "Community Hub",
        "One Stop Centre",
        "Library",
        "Jobshop",
        "Resource Centre",
        "Town Hall annexe",
    ),
    "health": (
        "Health Centre community room",
        "Medical Practice meeting room",
        "Wellbeing Centre",
        "Community Hospital",
        "Health and Wellbeing Hub",
    ),
    "cafe": (
        "The Corner Café",
        "Community Café",
        "The Old Co-op Café",
        "Café at the Library",
        "Pavilion Café",
        "{saint} Church café",
    ),
    "library": ("Library", "Community Library", "Library meeting room", "Community Hub"),
    "faith": (
        "{saint} Church",
        "Methodist Church",
        "Gurdwara community hall",
        "Mosque community room",
        "Quaker Meeting House",
        "United Reformed Church",
        "Salvation Army hall",
    ),
}
_ORGANISATIONS = (
    "{place} Neighbourhood Network", "{place} Community Association", "{place} Together",
    "Friends of {place}", "{place} Community Trust", "{place} Wellbeing Partnership",
    "{place} Voluntary Action", "Age Well {place}", "{place} Community Church",
)  # fmt: skip

# Vocabulary for fields. Listed features are common at halls and leisure centres, rare outdoors.
_ACCESS_P: dict[str, tuple[float, ...]] = {  # wheelchair, step_free, loop, toilet, bsl, print
    "hall": (0.5, 0.55, 0.25, 0.45, 0.03, 0.08),
    "outdoor": (0.12, 0.25, 0.0, 0.1, 0.02, 0.03),
    "garden": (0.25, 0.3, 0.0, 0.2, 0.02, 0.03),
    "leisure": (0.8, 0.8, 0.3, 0.8, 0.04, 0.05),
    "sports": (0.6, 0.6, 0.15, 0.6, 0.02, 0.03),
    "bowls": (0.4, 0.45, 0.05, 0.4, 0.01, 0.03),
    "office": (0.6, 0.65, 0.45, 0.55, 0.06, 0.25),
    "health": (0.75, 0.75, 0.5, 0.7, 0.06, 0.2),
    "cafe": (0.45, 0.5, 0.15, 0.4, 0.03, 0.1),
    "library": (0.7, 0.7, 0.45, 0.6, 0.05, 0.35),
    "faith": (0.45, 0.5, 0.3, 0.4, 0.02, 0.1),
    "online": (0.0, 0.0, 0.0, 0.0, 0.08, 0.12),
}
_COMMUNITY_LANGUAGES = ("ur", "pa", "pl", "ar", "bn", "ro", "ku", "so", "gu", "zh", "fa", "ti")

_FREE_SENT = (
    "Free.",
    "Free of charge.",
    "No charge.",
    "Free to attend.",
    "It costs nothing to come along.",
    "Free, donations welcome.",
)
_PAID_SENT = (
    "£{cost} per session.",
    "£{cost} a session, including a cuppa.",
    "Small charge of £{cost} to cover costs.",
    "£{cost} a week; first session free.",
    "Costs £{cost}.",
)
_SELF_SENT = (
    "Just turn up.",
    "No need to book — just come along.",
    "Drop in, everyone welcome.",
    "Please ring before your first visit.",
    "Newcomers always welcome.",
    "You can refer yourself.",
)
_PRO_SENT = (
    "Referral needed from your GP, social prescriber or another professional.",
    "By referral from a health professional or link worker.",
    "Ask your GP practice or link worker to refer you.",
)
_ONLINE_SENT = (
    "Meets online by video call (Zoom); you'll be sent a link.",
    "Runs online — all you need is a phone, tablet or computer.",
    "Held online on Microsoft Teams.",
    "Delivered by phone or video call.",
)
_ARRANGE_SENT = (
    "Times by arrangement.",
    "Sessions arranged to suit you.",
    "Get in touch to arrange a time.",
)
_INACTIVE_SENT = (
    "Currently paused.",
    "Not running at the moment — check back soon.",
    "On hold until further notice.",
)
_DAY_NAMES = dict(
    zip(
        DAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)

# Columns of the per-record uniform matrix: each random choice reads its own column.
(_U_NAME, _U_DESC, _U_ORG, _U_VENUE, _U_SAINT, _U_STREET, _U_HAS_STREET, _U_TAGS_NONE,
 _U_NEEDS_ABSENT, _U_COST_SENT, _U_COST_PICK, _U_BOOK_SENT, _U_BOOK_PICK, _U_ACCESS_SENT,
 _U_AGE_SENT, _U_TIME_SENT, _U_ONLINE_PICK, _U_LANG, _U_LANG_PICK, _U_CONTACT, _U_PHONE,
 _U_EMAIL, _U_URL, _U_SESS_N, _U_SLOT, _U_NO_END, _U_MIN_AGE, _U_LOC_NULL, _U_NO_DESC,
 _U_FORMAT_NULL, _U_REFERRAL_NULL, _U_COST_NULL, _U_CAP_NULL, _U_NAME_STYLE, _U_PC_ONLY,
 _U_GENERIC_18, _U_LANG_ORDER, _U_COUNT) = range(38)  # fmt: skip
_N_TAG_COLS = 6
_N_NEED_COLS = 8


def _index(u: float, n: int) -> int:
    return min(int(u * n), n - 1)


@lru_cache(maxsize=4096)
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("'", "")).strip("-")[:60] or "info"


def _clock(hhmm: str) -> str:
    hour, minute = int(hhmm[:2]), int(hhmm[3:])
    suffix = "am" if hour < 12 else "pm"
    h12 = hour % 12 or 12
    return f"{h12}{suffix}" if minute == 0 else f"{h12}.{minute:02d}{suffix}"


def _money(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _id_width(n: int) -> int:
    return 5 if n < 100_000 else len(str(n))


def _destination(
    lat0: np.ndarray, lon0: np.ndarray, dist_km: np.ndarray, bearing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``dist_km`` from the start along ``bearing`` (radians); flat-earth is fine here."""
    lat = lat0 + dist_km * np.cos(bearing) / _KM_PER_DEG
    lon = lon0 + dist_km * np.sin(bearing) / (_KM_PER_DEG * np.cos(np.radians(lat0)))
    return lat, lon


def _near_leeds(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    dlat = np.radians(lat - LEEDS_CENTRE[0])
    dlon = np.radians(lon - LEEDS_CENTRE[1]) * math.cos(math.radians(LEEDS_CENTRE[0]))
    return np.hypot(dlat, dlon) * 6371.0088 < 30.0


def _per_archetype(rng: np.random.Generator, arch: np.ndarray) -> dict[str, np.ndarray]:
    """Draw the numeric fields whose distributions differ by archetype, one group at a time."""
    n = arch.size
    cost = np.zeros(n)
    capacity = np.full(n, -1, dtype=np.int64)
    n_sessions = np.ones(n, dtype=np.int64)
    for a, kind in enumerate(ARCHETYPES):
        idx = np.flatnonzero(arch == a)
        if idx.size == 0:
            continue
        values, probs = zip(*kind.cost, strict=True)
        p = np.asarray(probs, dtype=float)
        cost[idx] = rng.choice(np.asarray(values, dtype=float), size=idx.size, p=p / p.sum())
        if kind.capacity is not None:
            capacity[idx] = rng.integers(kind.capacity[0], kind.capacity[1] + 1, size=idx.size)
        p_sessions = np.asarray(kind.sessions, dtype=float)
        n_sessions[idx] = rng.choice(3, size=idx.size, p=p_sessions / p_sessions.sum()) + 1
    # Organisers quote round numbers for bigger groups.
    round_five = (capacity > 12) & (rng.random(n) < 0.7)
    capacity[round_five] = np.maximum(5, np.round(capacity[round_five] / 5) * 5).astype(np.int64)
    return {"cost": cost, "capacity": capacity, "n_sessions": n_sessions}


def _attribute(name: str) -> np.ndarray:
    return np.array([getattr(kind, name) for kind in ARCHETYPES], dtype=float)


def generate_catalogue(
    n: int,
    seed: int = 0,
    *,
    places: list[tuple[str, float, float, str]] | None = None,
    centre: tuple[float, float] = LEEDS_CENTRE,
    radius_km: float = 10.0,
    id_prefix: str = "act-",
    missing_rate: float = 0.15,
) -> list[dict]:
    """Generate ``n`` synthetic activities in the contract's native form (§2).

    Parameters
    ----------
    n : int
        Number of activities.
    seed : int
        Seed for ``numpy.random.default_rng``; the same seed gives the same catalogue.
    places : list of (name, lat, lon, postcode), optional
        Places to put activities at: each activity is jittered within about 600 m of one
        place, keeps its postcode and gets a venue address. Without places, activities are
        scattered uniformly in a disc of ``radius_km`` around ``centre`` (coordinates only).
    centre, radius_km : used when ``places`` is None.
    id_prefix : str
        Ids are ``f"{id_prefix}{i:05d}"`` (more digits from 100,000 activities).
    missing_rate : float
        Fraction of activities whose need codes are left out, for the matcher to infer.

    Returns
    -------
    list of dict
        Activities that each pass :func:`matcher.contract.parse_activity`.
    """
    if n < 0:
        raise ValueError("n must be non-negative")
    if not 0.0 <= missing_rate <= 1.0:
        raise ValueError("missing_rate must be between 0 and 1")
    if places is not None and not places:
        raise ValueError("places must not be empty")
    rng = np.random.default_rng(seed)
    weights = _attribute("weight")
    arch = rng.choice(len(ARCHETYPES), size=n, p=weights / weights.sum())

    # Flags drawn as whole columns; ~8% online overall, keeping each archetype's relative odds.
    p_online_kind = _attribute("p_online")
    mean_online = float((p_online_kind * weights).sum() / weights.sum())
    p_online = np.minimum(0.95, p_online_kind[arch] * (0.08 / mean_online))
    online = rng.random(n) < p_online
    unknown_loc = ~online & (rng.random(n) < 0.03 / 0.92)
    inactive = rng.random(n) < 0.04
    needs_missing = rng.random(n) < missing_rate
    arranged = rng.random(n) < _attribute("p_arrange")[arch]
    professional = rng.random(n) < _attribute("p_professional")[arch]
    age_stated = rng.random(n) < _attribute("p_age")[arch]
    gender_stated = rng.random(n) < _attribute("p_gender")[arch]
    lang_p = _attribute("p_languages")[arch]
    numeric = _per_archetype(rng, arch)

    # Where: jitter around a place, or uniform in a disc.
    if places is not None:
        pidx = rng.integers(len(places), size=n)
        base_lat = np.array([p[1] for p in places], dtype=float)[pidx]
        base_lon = np.array([p[2] for p in places], dtype=float)[pidx]
        dist = 0.6 * np.sqrt(rng.random(n))
    else:
        pidx = rng.integers(len(_GENERIC_PLACES), size=n)
        base_lat = np.full(n, float(centre[0]))
        base_lon = np.full(n, float(centre[1]))
        dist = radius_km * np.sqrt(rng.random(n))
    lat, lon = _destination(base_lat, base_lon, dist, rng.uniform(0, 2 * np.pi, n))
    lat, lon = np.round(lat, 5), np.round(lon, 5)
    leeds = _near_leeds(lat, lon)

    venue_kinds = [kind.venue for kind in ARCHETYPES]
    access_p = np.array([_ACCESS_P[v] for v in venue_kinds])[arch]
    access_p[online] = _ACCESS_P["online"]
    access = rng.random((n, len(ACCESSIBILITY))) < access_p
    access[:, 1] |= access[:, 0] & (rng.random(n) < 0.9)  # wheelchair access is step-free
    access[rng.random(n) < 0.2] = False  # a fifth of listings say nothing about access

    tag_u = rng.random((n, _N_TAG_COLS)).tolist()
    need_u = rng.random((n, _N_NEED_COLS)).tolist()
    day_keys = rng.random((n, len(DAYS))).tolist()
    phone_digits = rng.integers(0, 1000, size=n).tolist()
    u_all = rng.random((n, _U_COUNT)).tolist()

    width = _id_width(n)
    arch_l, online_l, unknown_l = arch.tolist(), online.tolist(), unknown_loc.tolist()
    inactive_l, missing_l, arranged_l = inactive.tolist(), needs_missing.tolist(), arranged.tolist()
    prof_l, age_l, gender_l = professional.tolist(), age_stated.tolist(), gender_stated.tolist()
    lang_l = lang_p.tolist()
    cost_l = numeric["cost"].tolist()
    cap_l = numeric["capacity"].tolist()
    nsess_l = numeric["n_sessions"].tolist()
    lat_l, lon_l, pidx_l, leeds_l = lat.tolist(), lon.tolist(), pidx.tolist(), leeds.tolist()
    access_l = access.tolist()

    out: list[dict] = []
    for i in range(n):
        kind = ARCHETYPES[arch_l[i]]
        u = u_all[i]
        if places is not None:
            place_name, _, _, postcode = places[pidx_l[i]]
        else:
            place_name, postcode = _GENERIC_PLACES[pidx_l[i]], None
        is_online = online_l[i]

        name = kind.names[_index(u[_U_NAME], len(kind.names))].format(place=place_name)
        remote_by_nature = kind.p_online >= 0.5  # phone lines: "online" would read oddly
        if is_online and not remote_by_nature and "online" not in name.lower():
            name = f"{name} (online)" if u[_U_NAME_STYLE] < 0.6 else f"Online: {name}"
        organisation = (kind.organisations + _ORGANISATIONS)[
            _index(u[_U_ORG], len(kind.organisations) + len(_ORGANISATIONS))
        ].format(place=place_name)

        record: dict = {"id": f"{id_prefix}{i:0{width}d}", "name": name}

        # Sessions first: the description may quote them.
        sessions: list[dict] = []
        if not arranged_l[i]:
            allowed = kind.days.split()
            keys = day_keys[i]
            chosen = sorted(allowed, key=lambda d: keys[DAYS.index(d)])[: nsess_l[i]]
            start, end = kind.times[_index(u[_U_SLOT], len(kind.times))]
            for day in sorted(chosen, key=DAYS.index):
                session = {"day": day, "start": start}
                if u[_U_NO_END] >= 0.04:
                    session["end"] = end
                sessions.append(session)

        gender = kind.gender if (kind.gender and gender_l[i]) else None
        min_age = max_age = None
        if age_l[i] and (kind.min_ages or kind.max_age):
            if kind.min_ages:
                min_age = kind.min_ages[_index(u[_U_MIN_AGE], len(kind.min_ages))]
            max_age = kind.max_age
        elif u[_U_GENERIC_18] < 0.03:
            min_age = 18
        cost = None if u[_U_COST_NULL] < 0.06 else _number(cost_l[i])
        referral = None if u[_U_REFERRAL_NULL] < 0.08 else ("professional" if prof_l[i] else "self")
        features = [f for f, has in zip(ACCESSIBILITY, access_l[i], strict=True) if has]

        # Description: one archetype template plus a few sentences that agree with the fields.
        if u[_U_NO_DESC] >= 0.02:
            parts = [
                kind.descriptions[_index(u[_U_DESC], len(kind.descriptions))].format(
                    place=place_name
                )
            ]
            if is_online:
                pick = (
                    len(_ONLINE_SENT) - 1
                    if remote_by_nature
                    else _index(u[_U_ONLINE_PICK], len(_ONLINE_SENT))
                )
                parts.append(_ONLINE_SENT[pick])
            if gender == "male" and "men" not in parts[0].lower():
                parts.append("For men.")
            elif gender == "female" and "women" not in parts[0].lower():
                parts.append("Women only.")
            if min_age is not None and u[_U_AGE_SENT] < 0.6:
                parts.append(
                    f"For ages {min_age} to {max_age}."
                    if max_age
                    else f"For people aged {min_age} and over."
                )
            if sessions and u[_U_TIME_SENT] < 0.45:
                days = " and ".join(f"{_DAY_NAMES[s['day']]}s" for s in sessions)
                slot = f"{_clock(sessions[0]['start'])}"
                if "end" in sessions[0]:
                    slot += f"–{_clock(sessions[0]['end'])}"
                parts.append(f"{days}, {slot}.")
            elif not sessions and u[_U_TIME_SENT] < 0.6:
                parts.append(_ARRANGE_SENT[_index(u[_U_TIME_SENT] / 0.6, len(_ARRANGE_SENT))])
            if cost is not None and u[_U_COST_SENT] < 0.5:
                pool = _FREE_SENT if cost == 0 else _PAID_SENT
                parts.append(pool[_index(u[_U_COST_PICK], len(pool))].format(cost=_money(cost)))
            if referral and u[_U_BOOK_SENT] < 0.5:
                pool = _PRO_SENT if referral == "professional" else _SELF_SENT
                parts.append(pool[_index(u[_U_BOOK_PICK], len(pool))])
            if features and u[_U_ACCESS_SENT] < 0.35:
                if "wheelchair" in features:
                    parts.append("The venue is wheelchair accessible.")
                elif "hearing_loop" in features:
                    parts.append("Hearing loop fitted.")
                elif "large_print" in features:
                    parts.append("Large-print information available.")
            if inactive_l[i] and u[_U_ACCESS_SENT] > 0.5:
                parts.append(_INACTIVE_SENT[_index(u[_U_ACCESS_SENT] * 2 - 1, len(_INACTIVE_SENT))])
            record["description"] = " ".join(parts)
        record["organisation"] = organisation

        if not missing_l[i]:
            nu = need_u[i]
            needs = [kind.needs[0]]
            needs += [c for j, c in enumerate(kind.needs[1:]) if nu[j % 4] < 0.85]
            needs += [c for j, c in enumerate(kind.extra_needs) if nu[4 + j % 4] < 0.35]
            record["needs"] = list(dict.fromkeys(needs))
        elif u[_U_NEEDS_ABSENT] < 0.3:
            record["needs"] = []

        if u[_U_TAGS_NONE] >= 0.12:
            tu = tag_u[i]
            tags = [t for j, t in enumerate(kind.tags) if tu[j % _N_TAG_COLS] < 0.45]
            record["tags"] = tags or [kind.tags[_index(tu[0], len(kind.tags))]]

        if is_online:
            record["online"] = True
        elif unknown_l[i]:
            if u[_U_LOC_NULL] < 0.5:
                record["location"] = None
        else:
            location: dict = {"lat": lat_l[i], "lon": lon_l[i]}
            if postcode is not None:
                venue_pool = _VENUES[kind.venue]
                venue = venue_pool[_index(u[_U_VENUE], len(venue_pool))].format(
                    saint=_SAINTS[_index(u[_U_SAINT], len(_SAINTS))]
                )
                street = _STREETS[_index(u[_U_STREET], len(_STREETS))]
                address = (
                    f"{venue}, {street}, {place_name}"
                    if u[_U_HAS_STREET] < 0.4
                    else f"{venue}, {place_name}"
                )
                if u[_U_PC_ONLY] < 0.04:  # some listings give only a postcode
                    location = {}
                location.update(postcode=postcode, address=address)
            record["location"] = location

        record["sessions"] = sessions
        record["cost"] = cost
        if features:
            record["accessibility"] = features
        if min_age is not None:
            record["min_age"] = min_age
        if max_age is not None:
            record["max_age"] = max_age
        if gender is not None:
            record["gender"] = gender
        if u[_U_FORMAT_NULL] >= 0.05:
            record["format"] = kind.format
        if u[_U_LANG] < lang_l[i]:
            pool = kind.languages or _COMMUNITY_LANGUAGES
            other = pool[_index(u[_U_LANG_PICK], len(pool))]
            record["languages"] = ["en", other] if u[_U_LANG_ORDER] < 0.7 else [other]
        if referral is not None:
            record["referral"] = referral
        if cap_l[i] >= 0 and u[_U_CAP_NULL] >= 0.2:
            record["capacity"] = cap_l[i]
        if inactive_l[i]:
            record["status"] = "inactive"

        if u[_U_CONTACT] >= 0.08:
            contact: dict = {}
            slug = _slug(organisation)
            if u[_U_PHONE] < 0.85:
                digits = phone_digits[i]
                contact["phone"] = (
                    f"0113 496 {digits:04d}" if leeds_l[i] else f"01632 960{digits:03d}"
                )
            if u[_U_EMAIL] < 0.6:
                contact["email"] = f"{slug}@example.org"
            if u[_U_URL] < 0.5 or not contact:
                contact["url"] = f"https://example.org/{slug}/{_slug(kind.key)}"
            record["contact"] = contact
        out.append(record)
    return out
