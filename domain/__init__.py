"""Domain rules of Daka: plain functions and dataclasses, free of aiogram and SQLAlchemy."""
